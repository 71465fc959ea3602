"""One SVG chart per case for the history page: per-run medians with their confidence intervals, the fitted
levels, and dashed lines at the change points. Runs where the case has no timing are marked at the bottom.

Built on matplotlib's object API (``Figure``), not pyplot: no global state, no GUI backend, nothing left
open between charts. ``svg.hashsalt`` is fixed so the same history gives byte-identical pages.
"""

from __future__ import annotations

import io

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dlbench.formatting import fmt_change
from dlbench.regress.history import CaseHistory
from dlbench.statistics.samples import Summary

MAX_TICK_LABELS = 25
UP, DOWN, LEVEL, POINT = "#d62728", "#2ca02c", "#ff7f0e", "#1f77b4"


def _draw_medians(axes: Axes, xs: list[int], summaries: list[Summary]) -> None:
    medians = [s.median for s in summaries]
    below = [s.median - s.ci_low for s in summaries]
    above = [s.ci_high - s.median for s in summaries]
    axes.errorbar(xs, medians, yerr=[below, above], fmt="o", markersize=3, capsize=2, color=POINT,
                  label="median (95% CI)")


def _draw_levels(axes: Axes, case: CaseHistory, xs: list[int], position: dict[int, int]) -> None:
    for segment in case.segments:
        left, right = xs[segment.start] - 0.4, xs[segment.end - 1] + 0.4
        axes.hlines(segment.level, left, right, colors=LEVEL, linewidth=1.5)
    for change, point in case.steps():
        x = position[id(point)] - 0.5
        axes.axvline(x, color=UP if change.change > 0 else DOWN, linestyle="--", linewidth=1)
        axes.annotate(fmt_change(change.change), (x, 1.0), xycoords=("data", "axes fraction"),
                      xytext=(2, -10), textcoords="offset points", fontsize=7)


def _draw_run_axis(axes: Axes, case: CaseHistory) -> None:
    count = len(case.points)
    every = max(1, -(-count // MAX_TICK_LABELS))
    ticks = list(range(0, count, every))
    axes.set_xticks(ticks, [case.points[i].run.label for i in ticks], rotation=45, ha="right")
    axes.set_xlim(-0.7, count - 0.3)


def case_chart_svg(case: CaseHistory) -> str:
    """The chart of one case as an SVG document (text)."""
    position = {id(point): x for x, point in enumerate(case.points)}
    timed = case.timed
    xs = [position[id(p)] for p in timed]
    summaries = [p.summary for p in timed if p.summary is not None]
    untimed = [position[id(p)] for p in case.points if p.summary is None]
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "dlbench-history", "font.size": 8}):
        figure = Figure(figsize=(8.0, 2.8))
        axes = figure.add_subplot()
        _draw_medians(axes, xs, summaries)
        _draw_levels(axes, case, xs, position)
        if untimed:
            axes.plot(untimed, [0.02] * len(untimed), "x", color=UP, transform=axes.get_xaxis_transform(),
                      label="no timing (failed)")
        _draw_run_axis(axes, case)
        axes.set_ylabel("median ms")
        axes.grid(True, axis="y", alpha=0.3)
        axes.legend(loc="upper left", fontsize=7, frameon=False)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    return buffer.getvalue()
