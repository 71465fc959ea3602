"""compare fails by default when it compared nothing (no shared case, or every current case failed): CI
must not pass a broken benchmark. ``--allow-empty`` relaxes it; the headline says it either way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlbench.record.results import FAILED, UNAVAILABLE
from dlbench.regress.verdict_render import NOTHING_COMPARED
from tests.regress_fixtures import make_case, make_result, make_run, write_run
from tests.unit.test_file_safety import invoke

LENET, LSTM = make_case("lenet"), make_case("lstm")


def runs(tmp_path: Path, current: list) -> tuple[str, str]:  # type: ignore[type-arg]
    base = write_run(tmp_path / "base", make_run("base", [make_result(LENET), make_result(LSTM)]))
    cur = write_run(tmp_path / "cur", make_run("cur", current))
    return str(base), str(cur)


@pytest.mark.parametrize("name", ["no shared case", "every current case failed", "current is empty",
                                  "failed or unavailable"])
def test_nothing_compared_fails_unless_allowed(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               name: str) -> None:
    current = {
        "no shared case": [make_result(make_case("alexnet"))],
        "every current case failed": [make_result(LENET, status=FAILED, error="boom"),
                                      make_result(LSTM, status=FAILED, error="boom")],
        "current is empty": [],
        "failed or unavailable": [make_result(LENET, status=UNAVAILABLE), make_result(LSTM, status=FAILED)],
    }[name]
    base, cur = runs(tmp_path, current)
    code, out, _ = invoke(capsys, "compare", base, cur)
    assert code == 1 and NOTHING_COMPARED in out
    code, out, _ = invoke(capsys, "compare", base, cur, "--format", "json")
    assert code == 1 and json.loads(out)["nothing_compared"] is True and json.loads(out)["exit_code"] == 1
    code, out, _ = invoke(capsys, "compare", base, cur, "--allow-empty", "--format", "markdown")
    assert code == 0 and NOTHING_COMPARED in out


def test_one_compared_case_is_enough(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base, cur = runs(tmp_path, [make_result(LENET), make_result(LSTM, status=FAILED, error="boom")])
    code, out, _ = invoke(capsys, "compare", base, cur)
    assert code == 0 and "no regression" in out
    assert invoke(capsys, "compare", base, cur, "--strict")[0] == 1  # the newly failed case, as before
