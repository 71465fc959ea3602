"""Run records: round trip, atomic writes, locking, schema checks."""

import json
from pathlib import Path

import pytest

from dlbench.cases.spec import Case
from dlbench.errors import StoreError
from dlbench.record.results import OK, TIMEOUT, CaseResult, Memory, failed_result
from dlbench.record.store import CSV_COLUMNS, RunRecord, RunStore, load_run
from tests.record_fixtures import config, environment

REQUIRED_COLUMNS = (
    "run_id, workload, phase, framework, framework_version, variant, device, threads, batch_size, pass, "
    "precision, status, median_ms, iqr_ms, ci_low_ms, ci_high_ms, mean_ms, std_ms, n_samples, first_call_ms, "
    "samples_per_s, params, macs, gflops_per_s, peak_rss_mb, rss_rise_mb, device_peak_mb, error").split(", ")


def case(pass_: str = "forward", batch: int = 4) -> Case:
    return Case("lenet", "", pass_, "fake", "default", "cpu", 1, batch)


def ok_result(c: Case) -> CaseResult:
    return CaseResult(case=c, status=OK, samples_ms=(2.0, 2.1, 1.9, 2.0, 2.2), iterations_per_sample=3,
                      first_call_ms=40.0, params=431_080, macs=2_293_000,
                      memory=Memory(peak_rss=300 * 2**20, baseline_rss=200 * 2**20), affinity=(0,),
                      threads_effective=1, cpu_per_wall=0.99)


def record() -> RunRecord:
    return RunRecord(run_id="r1", created="2026-01-01T00:00:00+00:00",
                     environment=environment({"frameworks": {"fake": {"version": "9.9"}}}), config=config())


def test_round_trip_keeps_raw_samples_and_derives_the_csv(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path / "run", record())
    store.add(ok_result(case()))
    store.add(failed_result(case("gradient"), TIMEOUT, "no result after 3 s;\nworker killed"))
    store.finish("complete")
    store.close()
    loaded = load_run(tmp_path / "run")
    assert loaded.status == "complete"
    assert loaded.results[0] == ok_result(case())
    assert loaded.results[1].error == "no result after 3 s; worker killed"  # one line
    header, *rows = (tmp_path / "run" / "results.csv").read_text().splitlines()
    assert set(REQUIRED_COLUMNS) <= set(header.split(","))
    assert header.split(",") == list(CSV_COLUMNS)
    first = dict(zip(CSV_COLUMNS, rows[0].split(","), strict=True))
    assert first["median_ms"] == "2.0" and first["framework_version"] == "9.9"
    assert first["rss_rise_mb"] == "100.0" and first["n_samples"] == "5"
    assert float(first["samples_per_s"]) == pytest.approx(2000.0)
    second = dict(zip(CSV_COLUMNS, rows[1].split(","), strict=True))
    assert second["status"] == "timeout" and second["median_ms"] == ""


def test_adding_the_same_case_again_replaces_it(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path, record())
    store.add(failed_result(case(), TIMEOUT, "x"))
    store.add(ok_result(case()))
    assert [r.status for r in store.record.results] == ["ok"]
    store.close()


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    first = RunStore.open(tmp_path, record())
    with pytest.raises(StoreError, match="another dlbench run is writing"):
        RunStore.open(tmp_path, record(), resume=True)
    first.close()


def test_an_existing_run_is_never_overwritten(tmp_path: Path) -> None:
    RunStore.open(tmp_path, record()).close()
    with pytest.raises(StoreError, match="already holds a run"):
        RunStore.open(tmp_path, record())


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path, record())
    for batch in range(1, 5):
        store.add(ok_result(case(batch=batch)))
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "results.csv", "run.json", "run.jsonl"]


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"hello": 1}', "no schema_version"),
    ('{"schema_version": 99}', "schema version 99"),
    ('{"schema_version": 1, "run_id": "x"}', "damaged run record"),
])
def test_corrupt_or_unknown_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "run.json").write_text(content)
    with pytest.raises(StoreError, match=message):
        load_run(tmp_path)


def test_missing_run(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no dlbench run"):
        load_run(tmp_path / "nothing")


def test_unwritable_output_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create output directory"):
        RunStore.open(blocker / "sub", record())


def test_the_record_is_whole_after_every_case(tmp_path: Path) -> None:
    """run.json is a valid snapshot and each journal line valid JSON after every case; the record read back
    (snapshot plus journal) holds every case stored so far."""
    store = RunStore.open(tmp_path, record())
    for batch in range(1, 4):
        store.add(ok_result(case(batch=batch)))
        json.loads((tmp_path / "run.json").read_text())
        for line in (tmp_path / "run.jsonl").read_text().splitlines():
            json.loads(line)
        assert len(load_run(tmp_path).results) == batch
    store.close()
