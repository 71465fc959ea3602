"""The report's "Convolution algorithms" section: the study's second axis, each algorithm beside native.

For each measured group (run, workload or layer, setting, batch size, precision, framework, variant, pass)
that holds more than one algorithm, the table gives every algorithm's median time and memory side by side,
the fastest marked, and its speed-up against ``native`` (native / algorithm: above 1 is faster than what
the framework ships). The figure puts time against memory, a panel per workload and pass, one colour per
framework and one marker per algorithm: an algorithm down and to the left of another is better on both.
The study-style tables of the workload sections keep ``native`` only (:func:`native_only`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from dlbench.cases.spec import CONV_ALGORITHMS, NATIVE_CONV
from dlbench.formatting import MISSING, fmt_ms, fmt_num, fmt_speedup
from dlbench.report.frame import series_label
from dlbench.report.plots import MARKERS, Plot, _log_y, _new_figure, plain, series_styles, to_svg
from dlbench.report.tables import Cell, Table
from dlbench.workloads.definitions import LAYER_PREFIX

GROUP = ["run_order", "workload_label", "setting", "batch_size", "precision", "framework", "variant", "pass"]
SECTION_INTRO = (
    "The same network computed with each convolution algorithm, written with the framework's own operations "
    "(docs/convolution.md): native is the framework's own convolution op (oneDNN or Eigen on a CPU, cuDNN on "
    "a GPU, XLA's choice in JAX), im2col builds the patch matrix and multiplies once, fft multiplies in the "
    "frequency domain, direct sums one matrix multiply per kernel position. dlbench verify --conv all proves "
    "that they compute the same numbers. Memory is what the case added to the worker's resident set on a CPU, "
    "the allocator's peak on a GPU.")


def native_only(frame: pd.DataFrame) -> pd.DataFrame:
    """What the study-style tables compare across frameworks: the framework's own convolution where it was
    measured beside other algorithms (their comparison is this section's); a group measured with other
    algorithms only keeps them, under series labels that name the algorithm."""
    if frame.empty or "conv" not in frame:
        return frame
    has_native = (frame["conv"] == NATIVE_CONV).groupby([frame[c] for c in GROUP], sort=False).transform("any")
    return frame[(frame["conv"] == NATIVE_CONV) | ~has_native]


def _compared(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the groups where more than one algorithm was measured."""
    if frame.empty or "conv" not in frame or frame["conv"].nunique() < 2:
        return frame.iloc[0:0]
    counts = frame.groupby(GROUP, sort=False)["conv"].transform("nunique")
    return frame[counts > 1]


def _algorithms(frame: pd.DataFrame) -> list[str]:
    present = set(frame["conv"])
    return [a for a in CONV_ALGORITHMS if a in present] + sorted(present - set(CONV_ALGORITHMS))


def conv_table(frame: pd.DataFrame, many_runs: bool) -> Table | None:
    """One row per group, one cell per algorithm: ``median ms · speed-up · MB``; the fastest in bold."""
    compared = _compared(frame)
    if compared.empty:
        return None
    algorithms = _algorithms(compared)
    rows: list[tuple[Cell, ...]] = []
    data: list[dict[str, object]] = []
    for _, group in compared.groupby(GROUP, sort=False):
        by_algo = {str(r["conv"]): r for _, r in group.iterrows()}
        timed = {a: r for a, r in by_algo.items() if r["status"] == "ok" and math.isfinite(r["median_ms"])}
        native = timed.get(NATIVE_CONV)
        fastest = min(timed, key=lambda a: timed[a]["median_ms"]) if len(timed) > 1 else None
        first = group.iloc[0]
        cells = [Cell(str(first["run"]))] if many_runs else []
        cells += [Cell(str(first["workload_label"])), Cell(f"{first['setting']}, b{int(first['batch_size'])}"),
                  Cell(f"{first['framework']} [{first['variant']}{_precision(first)}]"), Cell(str(first["pass"]))]
        for algorithm in algorithms:
            row = by_algo.get(algorithm)
            speedup = (native["median_ms"] / row["median_ms"]
                       if native is not None and row is not None and algorithm in timed else math.nan)
            cells.append(_cell(row, algorithm == fastest, speedup))
            if row is not None:
                data.append({
                    "run": first["run"], "workload": first["workload"], "phase": first["phase"],
                    "setting": first["setting"], "device": first["device"], "threads": int(first["threads"]),
                    "batch_size": int(first["batch_size"]), "precision": first["precision"],
                    "framework": first["framework"], "variant": first["variant"], "pass": first["pass"],
                    "conv": algorithm, "status": row["status"], "median_ms": row["median_ms"],
                    "ci_low_ms": row["ci_low_ms"], "ci_high_ms": row["ci_high_ms"], "memory_mb": row["memory_mb"],
                    "gflops_per_s": row["gflops_per_s"], "peak_fraction": row["peak_fraction"],
                    "speedup_vs_native": speedup, "fastest": algorithm == fastest,
                    "conv_backend": row.get("conv_backend", ""),
                })
        rows.append(tuple(cells))
    header = (("run",) if many_runs else ()) + ("workload", "setting", "framework [variant]", "pass")
    header += tuple(algorithms)
    caption = ("Median time per batch, its speed-up against native (native / algorithm: above 1 is faster than "
               "the framework's own convolution) and the memory of the case, per algorithm; the fastest of each row "
               "in bold. A cell's tooltip gives the achieved GFLOP/s, the share of the calibrated peak where one "
               "was measured, and what the framework reported computing the convolutions.")
    return Table("conv-algorithms", "Convolution algorithms", caption, header, tuple(rows), pd.DataFrame(data))


def layer_flops_table(frame: pd.DataFrame, many_runs: bool) -> Table | None:
    """The layer benchmarks as convnet-benchmarks printed them: per layer, setting, framework and pass, each
    algorithm's achieved GFLOP/s and its share of the machine's calibrated matrix-multiply peak (runs made
    with ``--calibrate``); the highest in bold."""
    compared = _compared(frame)
    if compared.empty:
        return None
    layers = compared[compared["workload"].str.startswith(LAYER_PREFIX)]
    if layers.empty:
        return None
    algorithms = _algorithms(layers)
    rows: list[tuple[Cell, ...]] = []
    for _, group in layers.groupby(GROUP, sort=False):
        by_algo = {str(r["conv"]): r for _, r in group.iterrows() if r["status"] == "ok"}
        rates = {a: float(r["gflops_per_s"]) for a, r in by_algo.items() if math.isfinite(r["gflops_per_s"])}
        best = max(rates.values()) if len(rates) > 1 else None
        first = group.iloc[0]
        cells = [Cell(str(first["run"]))] if many_runs else []
        cells += [Cell(str(first["workload_label"]).removeprefix(LAYER_PREFIX)),
                  Cell(f"{first['setting']}, b{int(first['batch_size'])}"),
                  Cell(f"{first['framework']} [{first['variant']}{_precision(first)}]"), Cell(str(first["pass"]))]
        for algorithm in algorithms:
            rate = rates.get(algorithm)
            if rate is None:
                cells.append(Cell(MISSING, muted=True))
                continue
            share = by_algo[algorithm]["peak_fraction"]
            text = f"{fmt_num(rate)}" + (f" ({share:.0%})" if math.isfinite(share) else "")
            cells.append(Cell(text, best=rate == best))
        rows.append(tuple(cells))
    header = (("run",) if many_runs else ()) + ("layer", "setting", "framework [variant]", "pass", *algorithms)
    caption = ("Achieved GFLOP/s of each convolution layer alone (2 FLOPs per multiply-accumulate; the gradient pass, "
               "input and weight gradients, counts 3x the forward), and in brackets its share of the calibrated "
               "matrix-multiply peak of the same thread count (runs made with --calibrate). The highest of each row "
               "in bold.")
    columns = [c for c in ("run", "workload", "setting", "batch_size", "framework", "variant", "precision", "pass",
                           "conv", "gflops_per_s", "peak_gflops", "peak_fraction") if c in layers]
    return Table("conv-layers-gflops", "Convolution layers: achieved GFLOP/s", caption, header, tuple(rows),
                 layers[columns].reset_index(drop=True))


def _precision(row: pd.Series) -> str:
    return "" if row["precision"] in ("", "float32") else f", {row['precision']}"


def _cell(row: pd.Series | None, best: bool, speedup: float) -> Cell:
    if row is None:
        return Cell(MISSING, muted=True)
    if row["status"] != "ok":
        return Cell(str(row["status"]), muted=True, note=str(row.get("error", "")))
    memory = row["memory_mb"]
    text = f"{fmt_ms(row['median_ms'], unit=True)} · {fmt_speedup(speedup)} · {fmt_num(memory)} MB"
    note = f"{fmt_num(row['gflops_per_s'])} GFLOP/s"
    if math.isfinite(row["peak_fraction"]):
        note += f" ({row['peak_fraction']:.0%} of the calibrated peak)"
    backend = row.get("conv_backend", "")
    if isinstance(backend, str) and backend:
        note += f"; ran: {backend}"
    return Cell(text, best=best, note=note)


def conv_figure(frame: pd.DataFrame, slug: str, title: str) -> Plot | None:
    """Time (log) against memory, a panel per (workload, pass): colour = framework [variant, precision],
    marker = algorithm."""
    compared = _compared(frame)
    timed = compared[compared["status"] == "ok"] if not compared.empty else compared
    if timed.empty:
        return None
    timed = timed.assign(series=[series_label(f, v, p) for f, v, p in
                                 zip(timed["framework"], timed["variant"], timed["precision"], strict=True)])
    styles = series_styles(list(dict.fromkeys(timed["series"])))
    panels = list(dict.fromkeys(zip(timed["workload_label"], timed["pass"], strict=True)))
    algorithms = _algorithms(timed)
    markers = {a: MARKERS[i % len(MARKERS)] for i, a in enumerate(algorithms)}
    series = list(dict.fromkeys(timed["series"]))
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    figure, axes = _new_figure(ncols, nrows, title, styles, series)
    for index, (workload, pass_) in enumerate(panels):
        ax = axes[index // ncols, index % ncols]
        rows = timed[(timed["workload_label"] == workload) & (timed["pass"] == pass_)]
        ax.set_title(plain(f"{workload}, {pass_}"))
        ax.set_xlabel("memory (MB)")
        ax.set_ylabel("time per batch (ms)")
        for _, row in rows.iterrows():
            memory = row["memory_mb"]
            x = float(memory) if memory is not None and np.isfinite(memory) else 0.0
            ax.plot([x], [row["median_ms"]], linestyle="none", color=styles[row["series"]].color,
                    marker=markers[str(row["conv"])], markersize=6)
        _log_y(ax)
        ax.set_xlim(left=0)
        ax.legend(handles=[Line2D([], [], color="0.3", marker=markers[a], linestyle="none", label=a)
                           for a in algorithms if a in set(rows["conv"])], fontsize=7, frameon=False)
    for index in range(len(panels), nrows * ncols):
        axes[index // ncols, index % ncols].set_visible(False)
    caption = ("Each algorithm's median time against its memory (colour: framework [variant], marker: algorithm). "
               "Down and to the left is better on both counts.")
    return Plot(slug, title, caption, to_svg(figure))
