"""Figures: what is drawn (series, error bars, peak line), and that result text cannot break them."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from dlbench.report.frame import load_runs, passes_in, results_frame
from dlbench.report.plots import dodge, plain, series_styles, setting_figure, thread_figure
from tests.report_fixtures import FAILED, cases, make_run


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("plots")
    all_cases = cases(batches=(16, 64), threads=(1, 2), frameworks=("alpha", "beta", "gamma"))
    failing = {c.key: (FAILED, "x") for c in all_cases if c.framework == "gamma" and c.threads == 2}
    return results_frame(load_runs([make_run(root / "r", all_cases, failures=failing)]))


def legend_entries(svg: str) -> list[str]:
    return re.findall(r">(\w+ \[default\])</text>", svg)


def test_setting_figure_draws_one_line_per_timed_series(frame: pd.DataFrame) -> None:
    styles = series_styles(list(dict.fromkeys(frame["series"])))
    one = frame[frame["threads"] == 1]
    plot = setting_figure(one, passes_in(one), styles, "lenet-t1", "lenet, CPU, 1 thread", 50.0, "MB")
    assert plot.svg.lstrip().startswith("<?xml") and plot.svg.rstrip().endswith("</svg>")
    assert "<script" not in plot.svg
    assert sorted(set(legend_entries(plot.svg))) == ["alpha [default]", "beta [default]", "gamma [default]"]
    assert "calibrated peak 50" in plot.svg and "against the calibrated peak" in plot.caption
    # every series colour appears: the lines are drawn, not only the legend
    for series in ("alpha [default]", "beta [default]", "gamma [default]"):
        assert plot.svg.count(styles[series].color) >= 6  # 2 passes x 3 panels, plus legend


def test_failed_series_are_left_out_of_the_figure(frame: pd.DataFrame) -> None:
    styles = series_styles(list(dict.fromkeys(frame["series"])))
    two = frame[frame["threads"] == 2]
    plot = setting_figure(two, passes_in(two), styles, "lenet-t2", "lenet, CPU, 2 threads", None, "MB")
    assert sorted(set(legend_entries(plot.svg))) == ["alpha [default]", "beta [default]"]
    assert styles["gamma [default]"].color not in plot.svg
    assert "calibrated peak" not in plot.svg


def test_thread_figure_needs_two_thread_counts(frame: pd.DataFrame) -> None:
    styles = series_styles(list(dict.fromkeys(frame["series"])))
    at64 = frame[frame["batch_size"] == 64]
    plot = thread_figure(at64, passes_in(at64), styles, "lenet-threads", "lenet threads")
    assert plot is not None and "CPU threads" in plot.svg and "speed-up over 1 thread" in plot.svg
    assert thread_figure(at64[at64["threads"] == 1], ["forward"], styles, "x", "x") is None


def test_dollar_signs_in_labels_are_not_mathtext(tmp_path: Path) -> None:
    assert plain("host$1$") == r"host\$1\$"
    frame = results_frame(load_runs([make_run(tmp_path / "r", cases(batches=(64,), threads=(1,)))]))
    frame["series"] = "odd $x^2$ name"
    styles = series_styles(["odd $x^2$ name"])
    plot = setting_figure(frame, ["forward"], styles, "s", "title with $ signs $", None, "MB")
    assert "odd $x^2$ name" in plot.svg  # drawn literally, not typeset as a formula


def test_dodge_is_symmetric_and_small() -> None:
    shift = dodge(["a", "b", "c"])
    assert shift["b"] == 1.0 and shift["a"] * shift["c"] == pytest.approx(1.0)
    assert 1.0 < shift["c"] < 1.05
    assert dodge(["only"]) == {"only": 1.0}


def test_styles_are_stable_per_series() -> None:
    styles = series_styles(["a", "b"])
    assert styles["a"] != styles["b"] and series_styles(["a", "b"]) == styles
