"""``dlbench compare`` as a command: exit codes 0/1/2, formats, report files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.regress_fixtures import dlbench_main, make_case, make_result, make_run, write_run

QUIET = [10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.05, 10.1, 9.95, 10.0]
SLOW = [x * 1.25 for x in QUIET]
LENET, LSTM = make_case("lenet"), make_case("lstm")


def dlbench(*args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    return dlbench_main(monkeypatch, *args)


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    quiet = [make_result(LENET, QUIET), make_result(LSTM, QUIET)]
    slow = [make_result(LENET, SLOW), make_result(LSTM, QUIET)]
    return {
        "base": write_run(tmp_path / "base", make_run("base", quiet)),
        "same": write_run(tmp_path / "same", make_run("same", quiet)),
        "slow": write_run(tmp_path / "slow", make_run("slow", slow)),
    }


def test_identical_runs_exit_zero(runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert dlbench("compare", str(runs["base"]), str(runs["same"]), monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert "no regression (time: 2 unchanged; memory: 2 unchanged)" in out and LENET.key in out


def test_regression_exits_one_and_writes_both_report_files(runs: dict[str, Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    md, js = tmp_path / "comment.md", tmp_path / "verdicts.json"
    code = dlbench("compare", str(runs["base"]), str(runs["slow"] / "run.json"), "--markdown", str(md),
                   "--json", str(js), monkeypatch=monkeypatch)
    assert code == 1
    assert "1 time regression" in capsys.readouterr().out
    assert md.read_text().startswith("### ❌ dlbench: 1 time regression")
    assert json.loads(js.read_text())["counts"]["regressed"] == 1


def test_threshold_option_changes_the_verdict(runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    assert dlbench("compare", str(runs["base"]), str(runs["slow"]), "--threshold", "30%",
                   monkeypatch=monkeypatch) == 0
    assert dlbench("compare", str(runs["base"]), str(runs["slow"]), "--threshold", "0.2",
                   monkeypatch=monkeypatch) == 1


@pytest.mark.parametrize("format_", ["markdown", "json"])
def test_format_option_prints_that_form(format_: str, runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert dlbench("compare", str(runs["base"]), str(runs["slow"]), "--format", format_,
                   monkeypatch=monkeypatch) == 1
    out = capsys.readouterr().out
    if format_ == "json":
        assert json.loads(out)["exit_code"] == 1
    else:
        assert out.startswith("### ❌ dlbench: 1 time regression")


@pytest.mark.parametrize(("args", "fragment"), [
    (["--threshold", "5"], "ambiguous threshold"),
    (["--threshold", "five"], "bad threshold"),
    (["--alpha", "0.9"], "bad significance level"),
    (["--memory-threshold", "-1%"], "bad memory threshold"),
    (["--format", "html"], "html"),
    (["--memory-floor", "-3"], "memory-floor"),
])
def test_bad_options_exit_two_with_one_line(args: list[str], fragment: str, runs: dict[str, Path],
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert dlbench("compare", str(runs["base"]), str(runs["same"]), *args, monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_unreadable_runs_exit_two(runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert dlbench("compare", str(tmp_path / "nowhere"), str(runs["same"]), monkeypatch=monkeypatch) == 2
    assert "no dlbench run at" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    assert dlbench("compare", str(runs["base"]), str(broken), monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert "not valid JSON" in err and len(err.strip().splitlines()) == 1


def test_unwritable_report_file_is_a_one_line_error(runs: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing-dir" / "comment.md"
    assert dlbench("compare", str(runs["base"]), str(runs["same"]), "--markdown", str(target),
                   monkeypatch=monkeypatch) == 2
    assert "cannot write" in capsys.readouterr().err
