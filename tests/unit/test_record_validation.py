"""Stored records are validated where they are read: a damaged file is one StoreError naming the file and
the field, never a traceback, for every reader (``report``, ``compare``, ``export``, ``history``,
``run --resume``); a property-based test feeds mutated and garbage records to the loader."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlbench.errors import StoreError
from dlbench.record.results import OK, CaseResult
from dlbench.record.schema import RunRecord
from dlbench.record.store import RunStore, load_run, read_record
from tests.conftest import assert_one_line_error, run_cli

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "v1" / "complete"
V1: dict[str, Any] = json.loads((FIXTURE / "run.json").read_text())


def as_v2() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(read_record((FIXTURE / "run.json").read_bytes()).to_json())
    return data


def damage(change: Callable[[dict[str, Any]], None], base: dict[str, Any] | None = None) -> bytes:
    data = json.loads(json.dumps(base if base is not None else V1))
    change(data)
    return json.dumps(data).encode()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


DELETE = object()
DAMAGE = [
    (_set("config.cases.0.threads", DELETE), "config.cases[0]: object missing required field `threads`"),
    (_set("config.measure", DELETE), "config: object missing required field `measure`"),
    (_set("config.measure.min_samples", 1), "config.measure.min_samples: expected `int` >= 3"),
    (_set("config.seed", "7"), "config.seed: expected `int`, got `str`"),
    (_set("config.cases", "lenet"), "config.cases: expected `array`, got `str`"),
    (_set("results.0.samples_ms", [0, 0, 0]), "results[0].samples_ms[0]: expected `float` > 0.0"),
    (_set("results.0.samples_ms", ["1.0"]), "results[0].samples_ms[0]: expected `float`, got `str`"),
    (_set("results.0.samples_ms", []), "results[0].samples_ms: a case with status ok has no samples"),
    (_set("results.0.status", "great"), "results[0].status: expected `str` matching regex"),
    (_set("results.0.memory.peak_rss", -5), "results[0].memory.peak_rss: expected `int` >= 0"),
    (_set("environment.calibration.1.gflops", 0), "environment.calibration[...].gflops: expected `float` > 0.0"),
]


@pytest.mark.parametrize(("change", "message"), DAMAGE)
def test_damage_is_named_in_one_error(change: Callable[[dict[str, Any]], None], message: str) -> None:
    for base in (V1, as_v2()):
        with pytest.raises(StoreError, match="damaged run record") as info:
            read_record(damage(change, base), "x/run.json")
        assert message in str(info.value) and str(info.value).startswith("x/run.json")


@pytest.mark.parametrize(("data", "message"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not a dlbench run record"),
    (b'{"schema_version": 2, "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    (b'{"schema_version": 1, "config": {"timeout_s": NaN}}', "not valid JSON"),
    (b'{"schema_version": "2"}', "schema_version: expected `int`"),
    (b"", "not valid JSON"),
])
def test_garbage_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        read_record(data, "run.json")


def test_a_result_with_nan_is_kept_as_failed_and_the_file_stays_strict_json(tmp_path: Path) -> None:
    record = read_record((FIXTURE / "run.json").read_bytes())
    store = RunStore.open(tmp_path / "run", msgspec.structs.replace(record, results=[]))
    case = record.config.cases[0]
    store.add(CaseResult(case=case, status=OK, samples_ms=(1.0, 1.1, 0.9), cpu_per_wall=float("nan")))
    store.close()

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} written into run.json")

    for line in (tmp_path / "run" / "run.jsonl").read_text().splitlines():  # the journal holds it until compacted
        json.loads(line, parse_constant=refuse)
    stored = load_run(tmp_path / "run").results
    assert stored[0].status == "failed" and "cpu_per_wall" in stored[0].error
    infinite = CaseResult(case=case, status=OK, samples_ms=(float("inf"),))
    with pytest.raises(ValueError, match="not JSON compliant"):
        msgspec.structs.replace(record, results=[infinite]).to_json()


# ---------------------------------------------------------------- property: the loader never crashes
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = {1: _paths(V1)[1:], 2: _paths(as_v2())[1:]}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from((1, 2)))
    data = json.loads(json.dumps(V1 if version == 1 else as_v2()))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS[version]))
        node: Any = data
        try:
            for part in path[:-1]:
                node = node[part]
            if draw(st.booleans()) and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = draw(JSON)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    return json.dumps(data).encode()


def _check(data: bytes) -> None:
    try:
        record = read_record(data, "fuzz/run.json")
    except StoreError as exc:
        assert str(exc).startswith("fuzz/run.json") and "\n" not in str(exc)
        return
    assert isinstance(record, RunRecord)
    read_record(record.to_json().encode())  # what was accepted is written back valid


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_records_raise_store_error_or_load(data: bytes) -> None:
    _check(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_garbage_raises_store_error(data: bytes) -> None:
    _check(data)


# ---------------------------------------------------------------- every reader, end to end
@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    directory = tmp_path / "runs" / "bad"
    shutil.copytree(FIXTURE, directory)
    (directory / "run.json").write_bytes(damage(_set("results.0.samples_ms", [0, 0, 0])))
    return directory


def test_readers_give_one_line_and_exit_two(damaged: Path, tmp_path: Path) -> None:
    for args in (("report", str(damaged), "-o", str(tmp_path / "report")),
                 ("compare", str(FIXTURE), str(damaged)),
                 ("compare", str(damaged), str(FIXTURE)),
                 ("export", str(damaged)),
                 ("run", "--resume", str(damaged), "--quiet")):
        assert_one_line_error(run_cli(*args), "results[0].samples_ms[0]")


def test_history_skips_a_damaged_run_with_a_note(damaged: Path, tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "runs" / "good")
    proc = run_cli("history", str(tmp_path / "runs"), "-o", str(tmp_path / "history"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "skipped" in proc.stdout + proc.stderr and "samples_ms" in proc.stdout + proc.stderr
