"""The report's "% of peak" for GPU rows: judged against the GPU calibration of the row's own precision."""

from __future__ import annotations

from dlbench.report.frame import LoadedRun
from tests.regress_fixtures import make_environment, make_run


def test_gpu_rows_use_the_gpu_peak_of_their_precision() -> None:
    env = make_environment()
    env["calibration"] = {"4": {"gflops": 100.0}}
    env["calibration_gpu"] = {"float32": {"gflops": 19000.0}, "bf16": {"gflops": 250000.0}}
    run = LoadedRun("x", make_run("x", [], env))
    assert run.peak_gflops("gpu", 4) == 19000.0
    assert run.peak_gflops("gpu", 4, "bf16") == 250000.0
    assert run.peak_gflops("gpu", 4, "fp16") is None  # not calibrated: no share rather than a wrong one
    assert run.peak_gflops("cpu", 4) == 100.0


def test_a_run_without_gpu_calibration_has_no_gpu_peak() -> None:
    run = LoadedRun("x", make_run("x", [], make_environment()))
    assert run.peak_gflops("gpu", 1) is None


def test_a_throttled_gpu_case_is_flagged_in_the_study_table(tmp_path) -> None:
    import json

    from dlbench.report.frame import load_runs, results_frame
    from dlbench.report.tables import choose_batch, study_table
    from tests.report_fixtures import cases
    from tests.report_fixtures import make_run as write_run

    directory = write_run(tmp_path / "r", cases(batches=(64,), threads=(1,), device="gpu"))
    record = json.loads((directory / "run.json").read_text())
    hot = next(r for r in record["results"] if r["case"]["framework"] == "beta" and r["case"]["pass"] == "forward")
    hot["gpu_telemetry"] = {"n_samples": 9, "throttled": True, "throttle_reasons": {"sw_power_cap": 0.5}}
    (directory / "run.json").write_text(json.dumps(record))
    frame = results_frame(load_runs([directory]))
    assert frame["gpu_throttled"].sum() == 1
    choice = choose_batch(frame, "lenet", None)
    assert choice is not None
    table = study_table(frame, "lenet", "", choice, many_runs=False)
    flagged = [cell for row in table.rows for cell in row if "throttled" in cell.flag]
    assert len(flagged) == 1 and "the GPU slowed down while timed" in flagged[0].note
