"""Speed-up tables against hand-computed ratios of the fixture's known medians."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pandas as pd
import pytest

from dlbench.report import speedups
from dlbench.report.frame import load_runs, results_frame
from dlbench.report.tables import choose_batch
from tests.report_fixtures import FAILED, cases, cost_ms, make_environment, make_run


def timed_frame(*dirs: Path) -> pd.DataFrame:
    frame = results_frame(load_runs(list(dirs)))
    choice = choose_batch(frame, "lenet", None)
    assert choice is not None
    return speedups.timed_at_chosen(frame, {("lenet", ""): choice})


def test_thread_speedups_are_ratios_of_medians_at_the_chosen_batch(tmp_path: Path) -> None:
    timed = timed_frame(make_run(tmp_path / "r", cases(batches=(16, 64), threads=(1, 2))))
    table = speedups.thread_speedups(timed, many_runs=False)
    assert table is not None
    data = table.data
    assert set(data["batch_size"]) == {64}
    row = data[(data["framework"] == "beta") & (data["pass"] == "gradient") & (data["threads"] == 2)].iloc[0]
    expected = cost_ms("beta", "gradient", 64, 1) / cost_ms("beta", "gradient", 64, 2)
    assert row["speedup"] == pytest.approx(expected) and row["base_threads"] == 1
    assert table.header[-2:] == ("1 thread", "2 threads")
    cells = next(r for r in table.rows if r[1].text == "beta [default]" and r[2].text == "gradient")
    assert cells[-1].text == f"{expected:.2f}x" and cells[-1].best


def test_no_thread_table_with_a_single_thread_count(tmp_path: Path) -> None:
    timed = timed_frame(make_run(tmp_path / "r", cases(threads=(1,))))
    assert speedups.thread_speedups(timed, many_runs=False) is None


def test_gpu_speedup_uses_the_fastest_cpu_setting_of_the_same_host(tmp_path: Path) -> None:
    # host A has CPU 1 and 2 threads and a GPU; host B is a slow-looking CPU-only machine at 1 thread
    a = make_run(tmp_path / "a", cases(batches=(64,), threads=(1, 2)) + cases(batches=(64,), threads=(1,),
                                                                              device="gpu"), run_id="a")
    b = make_run(tmp_path / "b", cases(batches=(64,), threads=(1,)), run_id="b",
                 environment=make_environment(hostname="other"))
    table = speedups.gpu_speedups(timed_frame(a, b), many_runs=True)
    assert table is not None
    row = table.data[(table.data["framework"] == "alpha") & (table.data["pass"] == "forward")].iloc[0]
    assert row["cpu_setting"] == "CPU, 2 threads" and row["cpu_run"] == "bench-1 / a"
    expected = cost_ms("alpha", "forward", 64, 2) / cost_ms("alpha", "forward", 64, 1, device="gpu")
    assert row["speedup"] == pytest.approx(expected)
    assert len(table.data) == 4  # 2 frameworks x 2 passes, one row per GPU median


def test_gpu_speedup_takes_any_run_when_the_gpu_host_has_no_cpu_results(tmp_path: Path) -> None:
    gpu = make_run(tmp_path / "g", cases(batches=(64,), threads=(1,), device="gpu"), run_id="g",
                   environment=make_environment(hostname="gpu-box"))
    cpu = make_run(tmp_path / "c", cases(batches=(64,), threads=(1,)), run_id="c")
    table = speedups.gpu_speedups(timed_frame(gpu, cpu), many_runs=True)
    assert table is not None and set(table.data["cpu_run"]) == {"bench-1 / c"}
    assert table.data["speedup"].tolist() == pytest.approx([20.0] * 4, rel=1e-3)


def test_variant_speedup_compares_with_the_default_in_the_same_setting(tmp_path: Path) -> None:
    timed = timed_frame(make_run(tmp_path / "r", cases(batches=(64,), threads=(1, 2),
                                                       variants=("default", "fast"))))
    table = speedups.variant_speedups(timed, many_runs=False)
    assert table is not None
    data = table.data
    assert set(data["variant"]) == {"fast"} and set(data["default_variant"]) == {"default"}
    assert len(data) == 2 * 2 * 2  # frameworks x threads x passes
    assert data["speedup"].tolist() == pytest.approx([1 / 0.7] * 8, rel=1e-3)
    assert all(row[-1].best for row in table.rows)  # faster than the default: highlighted


def test_variant_without_a_default_to_compare_is_left_out(tmp_path: Path) -> None:
    all_cases = cases(batches=(64,), threads=(1,), variants=("default", "fast"))
    failures = {c.key: (FAILED, "x") for c in all_cases if c.variant == "default"}
    timed = timed_frame(make_run(tmp_path / "r", all_cases, failures=failures))
    assert speedups.variant_speedups(timed, many_runs=False) is None


def test_precision_speedups_pair_each_low_precision_row_with_its_float32_twin(tmp_path: Path) -> None:
    full = cases(batches=(64,), threads=(1,))
    low = [msgspec.structs.replace(c, precision="bf16") for c in full if c.framework == "alpha"]
    timed = timed_frame(make_run(tmp_path / "r", full + low))
    table = speedups.precision_speedups(timed, many_runs=False)
    assert table is not None
    assert len(table.data) == 2 and set(table.data["framework"]) == {"alpha"}  # beta has no bf16 rows
    row = table.data[table.data["pass"] == "gradient"].iloc[0]
    assert row["float32_median_ms"] == pytest.approx(cost_ms("alpha", "gradient", 64, 1))
    assert row["speedup"] == pytest.approx(1.0)  # the fixture's medians do not depend on the precision
    assert table.rows[0][0].text == "bf16 vs float32"


def test_no_precision_table_without_a_low_precision(tmp_path: Path) -> None:
    timed = timed_frame(make_run(tmp_path / "r", cases(threads=(1,))))
    assert speedups.precision_speedups(timed, many_runs=False) is None


def test_gflops_of_a_bf16_case_are_judged_against_the_bf16_peak(tmp_path: Path) -> None:
    environment = make_environment()
    environment["calibration"] = {"1": {"gflops": 100.0}}
    environment["calibration_precisions"] = {"bf16": {"1": {"gflops": 400.0}}}
    full = cases(batches=(64,), threads=(1,), frameworks=("alpha",))
    low = [msgspec.structs.replace(c, precision="bf16") for c in full]
    run = make_run(tmp_path / "r", full + low, environment=environment)
    frame = results_frame(load_runs([run]))
    peaks = dict(zip(frame["precision"], frame["peak_gflops"], strict=True))
    assert peaks == {"float32": 100.0, "bf16": 400.0}
