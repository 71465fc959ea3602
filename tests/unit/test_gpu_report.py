"""The report's "% of peak" for GPU rows: judged against the GPU calibration of the row's own precision."""

from __future__ import annotations

from dlbench.report.data import LoadedRun
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
