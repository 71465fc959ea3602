"""The report's tables: batch choice, the study table (medians, CIs, best values), efficiency, failures."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from dlbench.cases.spec import Case
from dlbench.report.frame import load_runs, results_frame, series_label, setting_label
from dlbench.report.tables import (
    BatchChoice,
    choose_batch,
    efficiency_table,
    failures_table,
    fmt_ms,
    study_table,
)
from tests.report_fixtures import FAILED, TIMEOUT, cases, cost_ms, make_environment, make_run


def at_paper_batch(frame: pd.DataFrame) -> BatchChoice:
    choice = choose_batch(frame, "lenet", None)
    assert choice is not None
    return choice


def frame_of(*dirs: Path) -> pd.DataFrame:
    return results_frame(load_runs(list(dirs)))


def test_choose_batch_prefers_the_paper_batch_size(tmp_path: Path) -> None:
    frame = frame_of(make_run(tmp_path / "r", cases(batches=(16, 64, 256))))
    choice = choose_batch(frame, "lenet", None)
    assert choice is not None and choice.batch_size == 64 and choice.wanted == 64
    assert "the paper's" in choice.describe() and "nearest" not in choice.describe()


def test_choose_batch_falls_back_to_the_nearest_on_a_log_scale_and_says_so(tmp_path: Path) -> None:
    frame = frame_of(make_run(tmp_path / "r", cases(batches=(8, 100))))
    choice = choose_batch(frame, "lenet", None)
    # |log(100/64)| = 0.45 < |log(8/64)| = 2.08 (in absolute terms 36 < 56 too, so also check a log-only case)
    assert choice is not None and choice.batch_size == 100
    assert "64 was not measured" in choice.describe() and "nearest" in choice.describe()
    frame = frame_of(make_run(tmp_path / "s", cases(batches=(24, 120))))
    # absolute distance would pick 24 (40 < 56); on a log scale 120 is nearer (0.63 < 0.98)
    assert choose_batch(frame, "lenet", None).batch_size == 120  # type: ignore[union-attr]


def test_choose_batch_honours_a_requested_size_and_breaks_ties_upwards(tmp_path: Path) -> None:
    frame = frame_of(make_run(tmp_path / "r", cases(batches=(16, 64))))
    assert choose_batch(frame, "lenet", 16).batch_size == 16  # type: ignore[union-attr]
    choice = choose_batch(frame, "lenet", 32)  # exactly between 16 and 64 in log terms
    assert choice is not None and choice.batch_size == 64 and "the requested batch size 32" in choice.describe()


def test_choose_batch_skips_sizes_where_every_case_failed(tmp_path: Path) -> None:
    all_cases = cases(batches=(32, 64))
    failures = {c.key: (FAILED, "boom") for c in all_cases if c.batch_size == 64}
    frame = frame_of(make_run(tmp_path / "r", all_cases, failures=failures))
    assert choose_batch(frame, "lenet", None).batch_size == 32  # type: ignore[union-attr]


def test_study_table_holds_the_stored_medians_cis_and_marks_the_best(tmp_path: Path) -> None:
    frame = frame_of(make_run(tmp_path / "r", cases(batches=(64,), threads=(1, 2))))
    choice = choose_batch(frame, "lenet", None)
    assert choice is not None
    table = study_table(frame, "lenet", "", choice, many_runs=False)
    assert table.header == ("setting", "framework [variant]", "gradient ms (95% CI)", "forward ms (95% CI)")
    data = table.data
    assert len(data) == 4  # 2 settings x 2 frameworks
    for _, row in data.iterrows():
        for pass_ in ("gradient", "forward"):
            expected = cost_ms(row["framework"], pass_, 64, int(row["threads"]))
            assert row[f"{pass_}_median_ms"] == pytest.approx(expected, abs=1e-4)
            assert row[f"{pass_}_ci_low_ms"] <= row[f"{pass_}_median_ms"] <= row[f"{pass_}_ci_high_ms"]
    # the fastest CPU value: alpha (cheapest) with 2 threads, one per pass, and only that row
    best = data[data["gradient_best"]]
    assert list(zip(best["framework"], best["threads"], strict=True)) == [("alpha", 2)]
    assert data["forward_best"].sum() == 1
    # the first rows of each setting group print the setting; the rest leave it blank, as in the study
    assert [row[0].text for row in table.rows] == ["CPU, 1 thread", "", "CPU, 2 threads", ""]
    assert table.group_starts == frozenset({0, 2})
    best_cells = [cell for row in table.rows for cell in row if cell.best]
    assert len(best_cells) == 2 and all(c.text.startswith(fmt_ms(cost_ms("alpha", "forward", 64, 2)))
                                        or c.text.startswith(fmt_ms(cost_ms("alpha", "gradient", 64, 2)))
                                        for c in best_cells)
    assert "(" in best_cells[0].text and "–" in best_cells[0].text  # the CI is shown


def test_study_table_best_value_is_per_device(tmp_path: Path) -> None:
    all_cases = cases(batches=(64,), threads=(1,)) + cases(batches=(64,), threads=(1,), device="gpu")
    frame = frame_of(make_run(tmp_path / "r", all_cases))
    table = study_table(frame, "lenet", "", at_paper_batch(frame), many_runs=False)
    data = table.data
    assert set(data["setting"]) == {"CPU, 1 thread", "GPU"}
    assert list(data["setting"]) == ["CPU, 1 thread", "CPU, 1 thread", "GPU", "GPU"]  # CPU before GPU
    assert data.groupby("device")["gradient_best"].sum().to_dict() == {"cpu": 1, "gpu": 1}


def test_study_table_shows_status_of_a_failed_cell_and_keeps_the_row(tmp_path: Path) -> None:
    all_cases = cases(batches=(64,), threads=(1,))
    failing = next(c for c in all_cases if c.framework == "beta" and c.pass_ == "gradient")
    frame = frame_of(make_run(tmp_path / "r", all_cases, failures={failing.key: (TIMEOUT, "killed after 5 s")}))
    table = study_table(frame, "lenet", "", at_paper_batch(frame), many_runs=False)
    beta_row = next(row for row in table.rows if row[1].text.startswith("beta"))
    assert beta_row[2].text == "timeout" and beta_row[2].muted and beta_row[2].note == "killed after 5 s"
    assert not beta_row[2].best


def test_efficiency_table_uses_the_calibrated_peak_of_the_thread_count(tmp_path: Path) -> None:
    env = make_environment(calibration={"1": 40.0})  # no entry for 2 threads
    frame = frame_of(make_run(tmp_path / "r", cases(batches=(64,), threads=(1, 2)), environment=env))
    table = efficiency_table(frame, "lenet", "", at_paper_batch(frame), many_runs=False)
    data = table.data.set_index(["framework", "threads"])
    row = data.loc[("alpha", 1)]
    gflops = 2 * 2293000 * 64 / (cost_ms("alpha", "forward", 64, 1) / 1e3) / 1e9
    assert row["forward_gflops_per_s"] == pytest.approx(gflops, rel=1e-3)
    assert row["forward_peak_fraction"] == pytest.approx(gflops / 40.0, rel=1e-3)
    assert row["forward_samples_per_s"] == pytest.approx(64 / (cost_ms("alpha", "forward", 64, 1) / 1e3), rel=1e-4)
    assert row["forward_memory_mb"] == pytest.approx(64.0)  # rise over the baseline, not the absolute RSS
    assert math.isnan(data.loc[("alpha", 2)]["forward_peak_fraction"])  # not calibrated for 2 threads


def test_failures_table_lists_every_case_without_timing(tmp_path: Path) -> None:
    all_cases = cases(batches=(64,), threads=(1,))
    failures = {all_cases[0].key: (FAILED, "ValueError: <bad> & worse"), all_cases[3].key: (TIMEOUT, "slow")}
    frame = frame_of(make_run(tmp_path / "r", all_cases, failures=failures))
    table = failures_table(frame)
    assert set(table.data["key"]) == set(failures)
    assert set(table.data["status"]) == {FAILED, TIMEOUT}
    assert "ValueError: <bad> & worse" in {row[-1].text for row in table.rows}


def test_failures_table_says_when_nothing_failed(tmp_path: Path) -> None:
    table = failures_table(frame_of(make_run(tmp_path / "r", cases(batches=(64,)))))
    assert table.rows == () and "Every case produced a timing" in table.caption


def test_two_runs_of_one_host_get_distinct_labels_and_a_run_column(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", cases(batches=(64,), threads=(1,)), run_id="run-a")
    b = make_run(tmp_path / "b", cases(batches=(64,), threads=(1,)), run_id="run-b",
                 environment=make_environment(hostname="gpu-box"))
    runs = load_runs([a, b, a])
    assert [r.label for r in runs] == ["bench-1 / run-a", "gpu-box / run-b", "bench-1 / run-a #2"]
    frame = results_frame(runs)
    table = study_table(frame, "lenet", "", at_paper_batch(frame), many_runs=True)
    assert table.header[0] == "run"
    assert [row[0].text for row in table.rows if row[0].text] == [r.label for r in runs]
    # the best value is marked per run: each run has its own fastest row
    assert table.data["gradient_best"].sum() == 3


def test_default_variant_comes_from_the_registered_adapter(tmp_path: Path) -> None:
    # the fake adapter's default is "default" although "fast" is measured more often here
    all_cases = cases(frameworks=("fake",), variants=("fast",), batches=(16, 64)) + cases(
        frameworks=("fake",), variants=("default",), batches=(64,))
    frame = frame_of(make_run(tmp_path / "r", all_cases))
    assert set(frame.loc[frame["default_variant"], "variant"]) == {"default"}
    # and the default variant sorts first within a setting
    first = frame[(frame["threads"] == 1) & (frame["batch_size"] == 64)].iloc[0]
    assert first["variant"] == "default"


def test_labels() -> None:
    assert setting_label("cpu", 1) == "CPU, 1 thread"
    assert setting_label("cpu", 12) == "CPU, 12 threads"
    assert setting_label("gpu", 1) == "GPU"
    assert series_label("torch", "channels_last", "float32") == "torch [channels_last]"
    assert series_label("torch", "eager", "bfloat16") == "torch [eager, bfloat16]"
    assert Case("lenet", "", "forward", "x", "v", "cpu", 1, 2).key.startswith("lenet/-/forward")
