"""The report's figures, drawn with matplotlib's object API into SVG text (no pyplot, no global state).

Two kinds of figure, both one line per framework variant:

- per workload phase, run and setting (CPU thread count or GPU): time, achieved GFLOP/s and memory
  against batch size, one column per pass. Time is on log-log axes with error bars from the 95% confidence
  interval of each median; GFLOP/s shows the calibrated matrix-multiply peak as a dashed line.
- per workload phase and run: CPU speed-up against thread count at the tables' batch size, with the
  ideal linear speed-up for reference.

SVG keeps text as text (``svg.fonttype = none``) so that files stay small; the browser draws it with a
local sans-serif font, nothing is fetched. A fixed hash salt and no date make the output reproducible.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    LogLocator,
    NullFormatter,
    NullLocator,
    ScalarFormatter,
)

PANEL_WIDTH, PANEL_HEIGHT = 3.5, 2.2  # inches
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 0.8, 0.2, 0.75, 0.5
TITLE_TOP, LEGEND_TOP, LEGEND_ROW = 0.1, 0.38, 0.24  # inches from the top; height of a legend row
GAP_WIDTH, GAP_HEIGHT = 0.85, 0.65
LEGEND_COLUMNS = 3
DODGE_STEP = 0.04  # in log2 units: neighbouring series sit 3% apart along the x axis
SVG_RC: dict[Any, Any] = {"svg.fonttype": "none", "svg.hashsalt": "dlbench", "font.size": 9, "axes.titlesize": 10}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class Plot:
    """A finished figure: ``slug`` names its file, ``svg`` is the complete SVG document."""

    slug: str
    title: str
    caption: str
    svg: str


@dataclass(frozen=True)
class Style:
    color: str
    marker: str


def series_styles(series: Sequence[str]) -> dict[str, Style]:
    """One colour and marker per series for the whole report, so a framework looks the same everywhere."""
    colors = matplotlib.color_sequences["tab10"]
    return {name: Style(to_hex(colors[i % len(colors)]), MARKERS[i % len(MARKERS)])
            for i, name in enumerate(series)}


def plain(text: str) -> str:
    """Text from results must never be read as matplotlib mathtext (a ``$`` in a host name)."""
    return str(text).replace("$", r"\$")


def to_svg(figure: Figure) -> str:
    with matplotlib.rc_context(SVG_RC):
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _new_figure(ncols: int, nrows: int, title: str, styles: dict[str, Style],
                present: Sequence[str]) -> tuple[Figure, np.ndarray]:
    """A titled grid of equal panels under one legend, with fixed margins in inches (matplotlib's
    constrained layout measures every tick label several times over; fixed margins are as readable and
    several times faster). The legend sits on top, where a reader of a tall figure starts."""
    legend = LEGEND_ROW * math.ceil(len(present) / LEGEND_COLUMNS) + 0.1 if present else 0.0
    width = MARGIN_LEFT + ncols * PANEL_WIDTH + (ncols - 1) * GAP_WIDTH + MARGIN_RIGHT
    height = MARGIN_TOP + legend + nrows * PANEL_HEIGHT + (nrows - 1) * GAP_HEIGHT + MARGIN_BOTTOM
    with matplotlib.rc_context(SVG_RC):
        figure = Figure(figsize=(width, height))
        figure.subplots_adjust(left=MARGIN_LEFT / width, right=1 - MARGIN_RIGHT / width,
                               top=1 - (MARGIN_TOP + legend) / height, bottom=MARGIN_BOTTOM / height,
                               wspace=GAP_WIDTH / PANEL_WIDTH, hspace=GAP_HEIGHT / PANEL_HEIGHT)
        axes = figure.subplots(nrows, ncols, squeeze=False)
        figure.suptitle(plain(title), y=1 - TITLE_TOP / height, va="top")
        handles = [Line2D([], [], color=styles[s].color, marker=styles[s].marker, label=plain(s))
                   for s in present]
        if handles:
            figure.legend(handles=handles, loc="upper center", ncols=min(LEGEND_COLUMNS, len(handles)),
                          frameon=False, bbox_to_anchor=(0.5, 1 - LEGEND_TOP / height))
    return figure, axes


def _log2_x(ax: Axes, values: Sequence[int], label: str) -> None:
    """Log base 2 x axis (batch sizes, thread counts) labelled at exactly the measured values."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted(set(values))))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(label)
    ax.grid(True, which="both", alpha=0.3)


PLAIN = FuncFormatter(lambda value, _: f"{value:.3g}")


def _log_y(ax: Axes, base: int = 10) -> None:
    """Log y axis labelled in plain numbers (matplotlib's default 10^n labels go through mathtext, slow to
    lay out), with 1-2-5 or denser labels when the data span few decades. Call after plotting."""
    ax.set_yscale("log", base=base)
    low, high = ax.get_ylim()
    span = math.log(high / low, base) if low > 0 and high > low else 0.0
    if base == 2:
        subs: tuple[float, ...] = (1.0,) if span > 3 else (1.0, 1.5)
    elif span > 2.5:
        subs = (1.0,)
    elif span > 0.8:
        subs = (1.0, 2.0, 5.0)
    else:
        subs = tuple(float(i) for i in range(1, 10))
    ax.yaxis.set_major_locator(LogLocator(base=base, subs=subs))
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_formatter(NullFormatter())


def _empty(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no timed cases", ha="center", va="center", transform=ax.transAxes, color="0.5")


def dodge(present: Sequence[str], step: float = DODGE_STEP) -> dict[str, float]:
    """A small multiplicative x offset per series, so that overlapping error bars stay visible."""
    middle = (len(present) - 1) / 2
    return {series: 2 ** (step * (i - middle)) for i, series in enumerate(present)}


def setting_figure(sub: pd.DataFrame, passes: Sequence[str], styles: dict[str, Style], slug: str,
                   title: str, peak_gflops: float | None, memory_label: str) -> Plot:
    """Time (log-log, CI error bars), achieved GFLOP/s and memory against batch size, a column per pass."""
    timed = sub[sub["status"] == "ok"]
    present = list(dict.fromkeys(timed["series"]))
    figure, axes = _new_figure(len(passes), 3, title, styles, present)
    shift = dodge(present)
    for col, pass_ in enumerate(passes):
        rows = timed[timed["pass"] == pass_]
        time_ax, flops_ax, mem_ax = axes[0, col], axes[1, col], axes[2, col]
        time_ax.set_title(plain(f"{pass_} pass"))
        time_ax.set_ylabel("time per batch (ms)")
        flops_ax.set_ylabel("achieved GFLOP/s")
        mem_ax.set_ylabel(memory_label)
        if rows.empty:
            for ax in (time_ax, flops_ax, mem_ax):
                _empty(ax)
            continue
        for series, line in rows.groupby("series", sort=False):
            line = line.sort_values("batch_size")
            style = styles[series]
            x = line["batch_size"].to_numpy(dtype=float) * shift[series]
            median = line["median_ms"].to_numpy(dtype=float)
            err = np.vstack([median - line["ci_low_ms"].to_numpy(dtype=float),
                             line["ci_high_ms"].to_numpy(dtype=float) - median]).clip(min=0)
            time_ax.errorbar(x, median, yerr=err, color=style.color, marker=style.marker, capsize=3,
                             markersize=4, linewidth=1.2)
            flops_ax.plot(x, line["gflops_per_s"], color=style.color, marker=style.marker, markersize=4)
            memory = line["memory_mb"].to_numpy(dtype=float)
            if np.isfinite(memory).any():
                mem_ax.plot(x, memory, color=style.color, marker=style.marker, markersize=4)
        batches = rows["batch_size"].astype(int).tolist()
        for ax in (time_ax, flops_ax, mem_ax):
            _log2_x(ax, batches, "batch size")
        _log_y(time_ax)
        if peak_gflops is not None:
            flops_ax.axhline(peak_gflops, color="0.3", linestyle="--", linewidth=1)
            flops_ax.annotate(f"calibrated peak {peak_gflops:.0f}", (0.02, peak_gflops),
                              xycoords=("axes fraction", "data"), va="bottom", fontsize=8, color="0.3")
        flops_ax.set_ylim(bottom=0)
        mem_ax.set_ylim(bottom=0)
    caption = ("Median time per batch with its 95% confidence interval (log axes), achieved GFLOP/s"
               + (" against the calibrated peak" if peak_gflops is not None else "")
               + f" and memory ({memory_label}), against batch size. Series are shifted slightly sideways so "
               "that their error bars do not hide each other.")
    return Plot(slug, title, caption, to_svg(figure))


def thread_figure(sub: pd.DataFrame, passes: Sequence[str], styles: dict[str, Style], slug: str,
                  title: str) -> Plot | None:
    """CPU speed-up over the fewest threads against thread count; None with fewer than two counts.

    Error bars are the conservative ratio of the confidence limits (reference high / this low, ...).
    """
    timed = sub[(sub["status"] == "ok") & (sub["device"] == "cpu")]
    counts = sorted(timed["threads"].astype(int).unique())
    if len(counts) < 2:
        return None
    present = list(dict.fromkeys(timed["series"]))
    figure, axes = _new_figure(len(passes), 1, title, styles, present)
    shift = dodge(present)
    for col, pass_ in enumerate(passes):
        ax = axes[0, col]
        ax.set_title(plain(f"{pass_} pass"))
        ax.plot(counts, np.array(counts) / counts[0], color="0.6", linestyle="--", linewidth=1, label="ideal")
        rows = timed[timed["pass"] == pass_]
        for series, line in rows.groupby("series", sort=False):
            line = line.sort_values("threads")
            base = line.iloc[0]
            speedup = base["median_ms"] / line["median_ms"].to_numpy(dtype=float)
            low = base["ci_low_ms"] / line["ci_high_ms"].to_numpy(dtype=float)
            high = base["ci_high_ms"] / line["ci_low_ms"].to_numpy(dtype=float)
            style = styles[series]
            err = np.vstack([speedup - low, high - speedup]).clip(min=0)
            ax.errorbar(line["threads"].to_numpy(dtype=float) * shift[series], speedup, yerr=err,
                        color=style.color, marker=style.marker, capsize=3, markersize=4)
        _log2_x(ax, counts, "CPU threads")
        _log_y(ax, base=2)
        ax.set_ylabel(f"speed-up over {counts[0]} thread{'s' if counts[0] != 1 else ''}")
    caption = ("Speed-up of the median time over the fewest threads measured, against thread count (log "
               "axes; dashed: ideal linear scaling; error bars from the confidence intervals; series shifted "
               "slightly sideways).")
    return Plot(slug, title, caption, to_svg(figure))
