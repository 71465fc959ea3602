"""``dlbench export``: github-action-benchmark, Bencher (BMF) and flat JSON forms of a stored run."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from dlbench.record.export import bencher, generic, github_action_benchmark
from dlbench.record.results import FAILED, Memory
from dlbench.record.store import CSV_COLUMNS, RunRecord
from dlbench.statistics.samples import summarize
from tests.regress_fixtures import MiB, dlbench_main, make_case, make_result, make_run, write_run

SAMPLES = [2.0, 2.1, 1.9, 2.0, 2.05, 1.95, 2.2, 2.0]
LENET, LSTM, ALEX = make_case("lenet"), make_case("lstm"), make_case("alexnet")


def sample_run() -> RunRecord:
    return make_run("run-1", [
        make_result(LENET, SAMPLES, rise_mib=40),
        make_result(ALEX, status=FAILED, error="boom"),
        make_result(LSTM, SAMPLES, rise_mib=10),
    ])


def test_github_action_benchmark_custom_smaller_is_better() -> None:
    entries = json.loads(github_action_benchmark(sample_run()))
    names = [e["name"] for e in entries]
    assert names == [LENET.key, f"{LENET.key} [peak-rss]", f"{LENET.key} [rss-rise]", LSTM.key,
                     f"{LSTM.key} [peak-rss]", f"{LSTM.key} [rss-rise]"]
    lenet = entries[0]
    summary = summarize(SAMPLES)
    assert lenet["unit"] == "ms" and lenet["value"] == pytest.approx(summary.median)
    below, above = summary.median - summary.ci_low, summary.ci_high - summary.median
    assert lenet["range"] == f"-{below:.3g} / +{above:.3g} (95% CI)"
    assert "n=8 samples" in lenet["extra"] and "torch 2.13.0" in lenet["extra"]
    assert entries[2] == {"name": f"{LENET.key} [rss-rise]", "unit": "MiB", "value": 40.0,
                          "extra": f"rss-rise of {LENET.key} in run run-1"}
    for entry in entries:  # the fields the action reads, with the types it expects
        assert isinstance(entry["name"], str) and isinstance(entry["unit"], str)
        assert isinstance(entry["value"], int | float)
        assert isinstance(entry.get("range", ""), str) and isinstance(entry.get("extra", ""), str)
    assert len(json.loads(github_action_benchmark(sample_run(), memory=False))) == 2


def test_bencher_metric_format() -> None:
    record = sample_run()
    record.results[0] = make_result(LENET, SAMPLES, rise_mib=None)
    record.results[2] = msgspec.structs.replace(make_result(LSTM, SAMPLES), memory=Memory(framework_peak=5 * MiB))
    data = json.loads(bencher(record))
    assert set(data) == {LENET.key, LSTM.key}
    summary = summarize(SAMPLES)
    assert data[LENET.key]["latency"] == {"value": pytest.approx(summary.median * 1e6),
                                          "lower_value": pytest.approx(summary.ci_low * 1e6),
                                          "upper_value": pytest.approx(summary.ci_high * 1e6)}
    assert data[LENET.key]["throughput"] == {"value": pytest.approx(64e3 / summary.median),
                                             "lower_value": pytest.approx(64e3 / summary.ci_high),
                                             "upper_value": pytest.approx(64e3 / summary.ci_low)}
    assert data[LSTM.key]["framework-peak"] == {"value": 5 * MiB}


def test_generic_json_keeps_every_case_as_flat_rows() -> None:
    data = json.loads(generic(sample_run()))
    assert data["schema"] == "dlbench-export/1" and data["run_id"] == "run-1"
    assert data["columns"] == list(CSV_COLUMNS)
    rows = {row["key"]: row for row in data["results"]}
    assert rows[ALEX.key]["status"] == "failed" and rows[ALEX.key]["median_ms"] is None
    assert rows[LENET.key]["framework_version"] == "2.13.0" and rows[LENET.key]["rss_rise_mb"] == 40.0


def run_export(*args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    return dlbench_main(monkeypatch, *args)


def test_export_command_writes_the_file_and_counts_left_out_cases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = write_run(tmp_path / "run", sample_run())
    target = tmp_path / "bench.json"
    assert run_export("export", str(run_dir), "--format", "github-action-benchmark", "--output", str(target),
                      monkeypatch=monkeypatch) == 0
    assert [e["name"] for e in json.loads(target.read_text())][0] == LENET.key
    assert "1 case(s) without a timing left out" in capsys.readouterr().err
    code = run_export("export", str(run_dir / "run.json"), "--format", "bencher", monkeypatch=monkeypatch)
    assert code == 0
    assert LENET.key in json.loads(capsys.readouterr().out)


def test_export_command_bad_input_exits_two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run_export("export", str(tmp_path / "none"), monkeypatch=monkeypatch) == 2
    assert "no dlbench run at" in capsys.readouterr().err
    run_dir = write_run(tmp_path / "run", sample_run())
    assert run_export("export", str(run_dir), "--format", "csv", monkeypatch=monkeypatch) == 2
    assert "csv" in capsys.readouterr().err


def test_the_range_states_an_asymmetric_interval_as_it_is() -> None:
    skewed = [1.0, 1.0, 1.01, 1.02, 1.02, 1.03, 1.5, 1.9, 2.5, 3.0]  # CI far longer above the median
    record = make_run("run-s", [make_result(LENET, skewed)])
    entry = json.loads(github_action_benchmark(record, memory=False))[0]
    summary = summarize(skewed)
    assert summary.ci_high - summary.median > 5 * (summary.median - summary.ci_low)
    assert entry["range"] == (f"-{summary.median - summary.ci_low:.3g} / +{summary.ci_high - summary.median:.3g}"
                              " (95% CI)")


def test_throughput_is_a_bigger_is_better_metric() -> None:
    entries = json.loads(github_action_benchmark(sample_run(), metric="throughput"))
    assert [e["name"] for e in entries] == [LENET.key, LSTM.key]  # no memory: more is not better there
    summary = summarize(SAMPLES)
    assert entries[0]["unit"] == "samples/s"
    assert entries[0]["value"] == pytest.approx(64 / (summary.median / 1e3), abs=1e-3)
    rate, low, high = 64e3 / summary.median, 64e3 / summary.ci_high, 64e3 / summary.ci_low
    assert entries[0]["range"] == f"-{rate - low:.3g} / +{high - rate:.3g} (95% CI)"


def test_strict_json_non_finite_environment_values_become_null() -> None:
    record = sample_run()
    # a fleet node's environment is kept as plain JSON, so a node may report a non-finite number
    record.environment = msgspec.structs.replace(record.environment,
                                                 nodes={"n1": {"load": float("nan"), "peak": float("inf")}})
    data = json.loads(generic(record))  # json.loads accepts NaN; the text must not contain it
    assert data["environment"]["nodes"] == {"n1": {"load": None, "peak": None}}
    assert "NaN" not in generic(record) and "Infinity" not in generic(record)


@pytest.mark.parametrize("format_", ["github-action-benchmark", "bencher", "json"])
def test_a_run_with_no_timed_case_is_refused_with_one_line(
    format_: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = write_run(tmp_path / "run", make_run("run-f", [make_result(ALEX, status=FAILED, error="boom")]))
    target = tmp_path / "bench.json"
    assert run_export("export", str(run_dir), "--format", format_, "-o", str(target),
                      monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert "run-f has no timed case to export (1 case(s), status failed)" in err
    assert len(err.splitlines()) == 1 and not target.exists()


def test_an_ab_run_exports_each_environment_as_its_own_series() -> None:
    """In a --python run every case exists once per environment: the names carry the environment, so
    github-action-benchmark gets no name twice and Bencher loses neither side."""
    record = make_run("ab", [
        msgspec.structs.replace(make_result(LENET, SAMPLES, rise_mib=None), environment="head"),
        msgspec.structs.replace(make_result(LENET, [x * 2 for x in SAMPLES], rise_mib=None), environment="base"),
    ])
    names = [e["name"] for e in json.loads(github_action_benchmark(record))]
    assert names == [f"{LENET.key}@base", f"{LENET.key}@head"]
    data = json.loads(bencher(record))
    assert set(data) == {f"{LENET.key}@base", f"{LENET.key}@head"}
    base, head = data[f"{LENET.key}@base"], data[f"{LENET.key}@head"]
    assert base["latency"]["value"] == pytest.approx(2 * head["latency"]["value"])
    assert [e["name"] for e in json.loads(github_action_benchmark(sample_run()))][0] == LENET.key  # no environment
