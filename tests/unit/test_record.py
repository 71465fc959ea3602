"""The typed run record: version-1 files (written by dlbench 0.1, committed under tests/fixtures/v1) read
without loss by every command, version 2 round trips, and the published JSON Schema is the types' own."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from dlbench.machine import capture as env
from dlbench.machine import nvml as gpu
from dlbench.record.metrics import result_row
from dlbench.record.schema import SCHEMA_VERSION, Environment, dumps, json_schema
from dlbench.record.store import csv_text, load_run, read_record
from tests.conftest import ROOT, run_cli
from tests.fake_nvml import FakeDevice, fake_pynvml

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "v1"
COMPLETE, INTERRUPTED = FIXTURES / "complete", FIXTURES / "interrupted"
AB_ROUNDS = FIXTURES / "ab-rounds"  # written by the last version-1 dlbench: --repeat 2, two --python environments
SCHEMA_DOC = ROOT / "docs" / "run-schema.json"


def raw(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "run.json").read_text())
    return data


@pytest.mark.parametrize("directory", [COMPLETE, INTERRUPTED])
def test_a_version_1_record_is_read_without_loss(directory: Path) -> None:
    old, record = raw(directory), load_run(directory)
    assert old["schema_version"] == 1 and record.schema_version == SCHEMA_VERSION
    assert (record.run_id, record.created, record.finished, record.status) == (
        old["run_id"], old["created"], old["finished"], old["status"])
    config = record.config
    added_axes = {"conv": "native"}  # case axes added since 0.1, at their defaults
    assert [c.to_dict() for c in config.cases] == [{**c, **added_axes} for c in old["config"]["cases"]]
    added_settings = {"repeats": 1}  # measurement settings added since 0.1, at their defaults
    assert config.measure.to_dict() == {**old["config"]["measure"], **added_settings}
    assert old["config"]["measure"] == old["suite"]["measure"]
    assert config.seed == old["config"]["seed"] == 7  # the run's seed (--seed 7), not the suite file's 0
    assert config.memory_limit_mb == old["config"]["memory_limit_mb"]
    assert config.default_variants == old["config"]["default_variants"]
    assert list(config.command) == old["config"]["command"]
    for key in ("name", "description", "source", "workloads", "passes", "frameworks", "notes"):
        assert json.loads(json.dumps(getattr(config.suite, key))) == old["suite"][key]
    env, old_env = record.environment, old["environment"]
    assert env.dlbench == old_env["dlbench"] and env.packages == old_env["packages"]
    assert json.loads(json.dumps({k: getattr(env.host, k) for k in old_env["host"]})) == old_env["host"]
    assert (env.git.commit, env.git.dirty) == (old_env["git"]["commit"], old_env["git"]["dirty"])
    assert json.loads(json.dumps(msgspec.to_builtins(env.workers))) == old_env["workers"]
    assert {name: r.version for name, r in env.frameworks.items()} == {
        name: info["version"] for name, info in old_env["frameworks"].items()}
    for threads, entry in old_env.get("calibration", {}).items():
        stored = env.calibration[int(threads)]
        assert {k: json.loads(json.dumps(getattr(stored, k))) for k in entry} == entry
    added = {"host": "", "node_id": "", "retries": 0, "dtypes": {}, "rounds": [], "environment": "",
             "gpu_telemetry": None, "traits": {}, "sync_ms": None, "device_samples_ms": [],
             "gpu_selector": ""}  # fields added since 0.1, at their defaults
    added_memory = {"device_peak_measure": None, "device_in_use_before": None}
    assert [json.loads(json.dumps(r.to_dict())) for r in record.results] == [
        {**{k: v for k, v in r.items() if k != "key"}, **added, "memory": {**r["memory"], **added_memory},
         "case": {**r["case"], **added_axes}}
        for r in old["results"]]
    # the numbers derived today are those that 0.1 wrote into results.csv, as the same text; only the median's
    # confidence interval differs: its order statistics were corrected since (see test_stats)
    text = csv_text(record)
    now, then = csv_rows(text), csv_rows((directory / "results.csv").read_text())
    corrected = ("ci_low_ms", "ci_high_ms")
    assert [{k: v for k, v in r.items() if k in then[0] and k not in corrected} for r in now] == [
        {k: v for k, v in r.items() if k not in corrected} for r in then]
    assert all(r["host"] == r["node_id"] == r["environment"] == "" and r["retries"] == "0" for r in now)  # since 0.1
    for row in now:
        assert (row["ci_low_ms"] == "") == (row["median_ms"] == "")
        if row["median_ms"]:
            assert float(row["ci_low_ms"]) <= float(row["median_ms"]) <= float(row["ci_high_ms"])


def test_a_version_1_ab_run_with_rounds_keeps_its_environments_rounds_and_control() -> None:
    old, record = raw(AB_ROUNDS), load_run(AB_ROUNDS)
    assert [(e.name, e.python) for e in record.config.environments] == [
        (e["name"], e["python"]) for e in old["config"]["environments"]]
    assert record.config.control is True and record.config.measure.repeats == 2
    assert record.config.suite.precisions == tuple(old["suite"]["precision"])
    assert [msgspec.to_builtins(c) for c in record.environment.control] == old["environment"]["control"]
    for name, section in old["environment"]["environments"].items():
        assert record.framework_versions(name) == {fw: info["version"] for fw, info in section["frameworks"].items()}
    assert [(r.environment, r.round_count, list(r.samples_ms)) for r in record.results] == [
        (r["environment"], len(r["rounds"]), r["samples_ms"]) for r in old["results"]]
    now, then = csv_rows(csv_text(record)), csv_rows((AB_ROUNDS / "results.csv").read_text())
    same = [k for k in then[0] if k not in ("ci_low_ms", "ci_high_ms")]
    assert [{k: r[k] for k in same} for r in now] == [{k: r[k] for k in same} for r in then]


def test_compare_within_reads_a_version_1_ab_run() -> None:
    proc = run_cli("compare", "base", "head", "--within", str(AB_ROUNDS), "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    assert data["cases"] and all(c["key"] for c in data["cases"])


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_complete_fixture_holds_what_the_tests_rely_on() -> None:
    record = load_run(COMPLETE)
    assert record.config.memory_limit_mb == 4000 and record.environment.calibration
    assert {r.status for r in record.results} == {"ok", "crashed"}
    assert {r.status for r in load_run(INTERRUPTED).results} == {"ok", "interrupted"}


def test_a_version_2_record_round_trips() -> None:
    record = load_run(COMPLETE)
    again = read_record(record.to_json().encode())
    assert again == record
    assert json.loads(record.to_json())["schema_version"] == SCHEMA_VERSION


def test_rows_hold_numbers_not_text() -> None:
    record = load_run(COMPLETE)
    ok = next(r for r in record.results if r.ok)
    row = result_row(record.run_id, ok)
    assert isinstance(row["median_ms"], float) and isinstance(row["n_samples"], int)
    assert row["noisy"] in (True, False) and row["framework_flops"] is None
    failed = result_row(record.run_id, next(r for r in record.results if not r.ok))
    assert failed["median_ms"] is None and failed["gflops_per_s"] is None


def copy(directory: Path, tmp_path: Path) -> Path:
    target = tmp_path / directory.name
    shutil.copytree(directory, target)
    return target


def test_report_compare_history_and_export_read_version_1(tmp_path: Path) -> None:
    complete, interrupted = copy(COMPLETE, tmp_path / "runs"), copy(INTERRUPTED, tmp_path / "runs")
    report = run_cli("report", str(complete), str(interrupted), "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert "calibrat" in (tmp_path / "report" / "index.html").read_text().lower()
    compare = run_cli("compare", str(complete), str(interrupted), "--format", "json")
    assert compare.returncode in (0, 1), compare.stderr
    assert "Traceback" not in compare.stderr and json.loads(compare.stdout)
    history = run_cli("history", str(tmp_path / "runs"), "-o", str(tmp_path / "history"))
    assert history.returncode == 0, history.stderr
    assert "skipped" not in history.stdout + history.stderr
    export = run_cli("export", str(complete), "--format", "json")
    assert export.returncode == 0, export.stderr
    rows = json.loads(export.stdout)["results"]
    assert len(rows) == 4 and isinstance(rows[0]["median_ms"], float)


def test_run_resume_finishes_a_version_1_run(tmp_path: Path) -> None:
    directory = copy(INTERRUPTED, tmp_path)
    before = {r.case.key: r for r in load_run(directory).results if r.ok}
    proc = run_cli("run", "--resume", str(directory), "--quiet")
    assert proc.returncode == 0, proc.stderr
    record = load_run(directory)
    assert json.loads((directory / "run.json").read_text())["schema_version"] == SCHEMA_VERSION
    assert record.status == "complete" and all(r.ok for r in record.results) and len(record.results) == 4
    assert {k: r for k, r in ((r.case.key, r) for r in record.results) if k in before} == before
    assert record.config.seed == 7  # resumed with the seed the run started with


def test_the_published_json_schema_is_generated_from_the_types() -> None:
    committed = json.loads(SCHEMA_DOC.read_text())
    assert committed == json.loads(dumps(json_schema())), \
        "regenerate: python -m dlbench.record.schema > docs/run-schema.json"


def leaves(data: Any, path: str = "") -> set[str]:
    """Every key path of a JSON-like value (list items as ``[]``), to see what a conversion dropped."""
    if isinstance(data, dict):
        return set().union(*(leaves(v, f"{path}.{k}") for k, v in data.items())) | {path}
    if isinstance(data, list | tuple):
        return set().union(*(leaves(v, f"{path}[]") for v in data)) | {path}
    return {path}


def test_the_typed_environment_keeps_every_field_that_capture_records(monkeypatch: pytest.MonkeyPatch) -> None:
    # a field that the types do not know would be dropped in silence when the record is built
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([FakeDevice(), FakeDevice(denied={"uuid"})]))
    gpu.nvml_gpus.cache_clear()
    try:
        captured = env.capture()
        assert captured["gpus"] and captured["gpus"][1]["errors"]
        typed = msgspec.to_builtins(msgspec.convert(captured, Environment), str_keys=True)
    finally:
        gpu.nvml_gpus.cache_clear()
    assert leaves(captured) <= leaves(typed)
