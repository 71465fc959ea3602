"""Matmul peak calibration: pinned child per thread count, thread variables set, clear errors."""

from __future__ import annotations

import os

import pytest

from dlbench.errors import DlbenchError
from dlbench.measure.calibrate import calibrate

# Small and short: the tests check the mechanism, not the machine's peak.
QUICK = {"warmup_s": 0.01, "min_block_s": 0.002, "min_samples": 3, "max_samples": 5, "min_time_s": 0.01,
         "max_time_s": 0.2, "target_rel_ci": 0.5}


def test_each_thread_count_is_measured_in_a_child_pinned_to_that_many_cores() -> None:
    cores = sorted(os.sched_getaffinity(0))
    counts = [1, 2] if len(cores) >= 2 else [1]
    result = calibrate(counts, size=96, measure=QUICK)
    assert sorted(result) == counts
    for n, entry in result.items():
        assert entry["threads"] == n
        assert entry["cores"] == cores[:n]  # the child's own affinity, read after pinning
        assert entry["thread_env"] == {"OMP_NUM_THREADS": str(n), "OPENBLAS_NUM_THREADS": str(n),
                                       "MKL_NUM_THREADS": str(n)}
        assert entry["gflops"] > 0 and entry["gflops_ci_low"] <= entry["gflops"] <= entry["gflops_ci_high"]
        assert entry["gflops_best"] >= entry["gflops"]
        assert entry["n_samples"] >= 3 and entry["size"] == 96 and entry["dtype"] == "float32"
        # GFLOP/s is 2 n^3 over the median time
        assert entry["gflops"] == pytest.approx(2 * 96**3 / (entry["median_ms"] / 1e3) / 1e9, rel=1e-3)
        assert entry["blas"]


def test_duplicates_are_measured_once() -> None:
    assert list(calibrate([1, 1], size=32, measure=QUICK)) == [1]


@pytest.mark.parametrize("threads, message", [
    ([], "at least one thread count"),
    ([0], "positive integers"),
    ([-2], "positive integers"),
    ([10_000], "cannot calibrate 10000 threads"),
])
def test_bad_thread_counts_are_one_line_errors(threads: list[int], message: str) -> None:
    with pytest.raises(DlbenchError, match=message):
        calibrate(threads, size=32, measure=QUICK)


def test_a_child_that_fails_is_reported_with_its_last_error_line() -> None:
    with pytest.raises(DlbenchError, match="calibration with 1 thread.* failed: .*max_samples"):
        calibrate([1], size=32, measure={**QUICK, "max_samples": 1})  # invalid MeasureConfig in the child


def test_a_child_that_takes_too_long_is_stopped() -> None:
    with pytest.raises(DlbenchError, match="took longer than"):
        calibrate([1], size=32, measure=QUICK, timeout_s=0.01)


def test_low_precision_peaks_are_timed_with_torch_beside_its_own_float32() -> None:
    pytest.importorskip("torch")
    (entry,) = calibrate([1], size=64, measure=QUICK, precision="bf16").values()
    assert entry["dtype"] == "bfloat16" and entry["precision"] == "bf16" and entry["library"].startswith("torch")
    assert entry["gflops"] > 0 and entry["float32_same_library_gflops"] > 0
    assert entry["cores"] == sorted(os.sched_getaffinity(0))[:1]


def test_precisions_without_a_cpu_matmul_are_refused() -> None:
    with pytest.raises(DlbenchError, match="tf32 is GPU-only"):
        calibrate([1], size=32, measure=QUICK, precision="tf32")


# ----- GPU calibration (issue 14): plumbing only, no GPU here -----

def test_gpu_calibration_refuses_unknown_precisions() -> None:
    from dlbench.measure.calibrate import calibrate_gpu

    with pytest.raises(DlbenchError, match="no GPU matmul calibration for int8"):
        calibrate_gpu(["float32", "int8"])


def test_gpu_calibration_without_a_gpu_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlbench.measure.calibrate import calibrate_gpu

    with pytest.raises(DlbenchError, match="GPU calibration failed: calibrating the GPU needs PyTorch with CUDA"):
        calibrate_gpu(["float32"], size=32, measure=QUICK, timeout_s=120)


def test_gpu_calibration_entries_per_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child's loop with a NumPy stand-in for the device library: one entry per precision."""
    import numpy as np

    from dlbench.measure import calibrate as module
    def product(size: int, precision: str):
        a = np.ones((size, size), dtype=np.float32)
        return lambda: a @ a

    monkeypatch.setattr(module, "_gpu_matmul_library", lambda: (product, lambda _: None, "numpy stand-in"))
    found = module.measure_gpu_matmul(32, QUICK, ["float32", "tf32"])
    assert list(found) == ["float32", "tf32"]
    for precision, entry in found.items():
        assert entry["precision"] == precision and entry["device"] == "gpu" and entry["library"] == "numpy stand-in"
        assert entry["gflops"] > 0 and entry["gflops_ci_low"] <= entry["gflops"] <= entry["gflops_ci_high"]
