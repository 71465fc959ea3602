"""The report's tables, each built once and rendered twice: as HTML cells and as a CSV frame.

A :class:`Table` carries both views of the same numbers: ``data`` (raw values, written to CSV so that
anyone can re-plot them) and ``rows`` of display :class:`Cell` s (formatted text, best value marked). Both
are derived from the rows of :func:`dlbench.report.frame.results_frame` and nothing else.

The main table copies the layout of Table 3 of the 2016 study: one row per setting (CPU thread count or
GPU) and framework variant, gradient and forward milliseconds at one batch size, the best value of each
device highlighted; here every time also carries the 95% confidence interval of its median.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pandas as pd

from dlbench.formatting import MISSING, fmt_ms, fmt_num
from dlbench.report.frame import passes_in, workload_label
from dlbench.workloads import networks

ROW_KEYS = ("run", "device", "threads", "setting", "framework", "variant", "precision", "series")
GROUP_SIZE = 4  # the first four row keys name a (run, setting) group, drawn with a rule above


@dataclass(frozen=True)
class Cell:
    """One displayed value. ``note`` becomes a tooltip, ``flag`` a superscript marker."""

    text: str
    best: bool = False
    note: str = ""
    muted: bool = False
    flag: str = ""


@dataclass(frozen=True)
class Table:
    """A titled table; ``slug`` names its CSV file; ``group_starts`` are rows drawn with a rule above."""

    slug: str
    title: str
    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    data: pd.DataFrame
    group_starts: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class BatchChoice:
    """The batch size a workload's tables are shown at, and why."""

    batch_size: int
    wanted: int
    source: str  # "the paper's" or "the requested"

    def describe(self) -> str:
        if self.batch_size == self.wanted:
            return f"batch size {self.batch_size} ({self.source})"
        return (f"batch size {self.batch_size}: {self.source} batch size {self.wanted} was not measured, "
                f"{self.batch_size} is the nearest measured one")


def choose_batch(sub: pd.DataFrame, workload: str, requested: int | None) -> BatchChoice | None:
    """The requested batch size, else the workload's paper batch size, else the nearest measured one.

    "Nearest" is on a log scale (batch sizes are swept in powers of two; 48 is as far from 32 as from 64
    only in ratio terms), ties going to the larger size. Sizes with a timed result are preferred, so a
    table is not built at a size where every case failed.
    """
    if sub.empty:
        return None
    if requested is not None:
        wanted, source = requested, "the requested"
    elif workload in networks():
        wanted, source = networks()[workload].paper_batch_size, "the paper's"
    else:
        wanted, source = int(sub["batch_size"].median()), "the median measured"
    timed = sub.loc[sub["status"] == "ok", "batch_size"]
    candidates = sorted({int(b) for b in (timed if not timed.empty else sub["batch_size"])})
    best = min(candidates, key=lambda b: (abs(math.log(b / wanted)), -b))
    return BatchChoice(best, wanted, source)


def key_cells(row: pd.Series, many_runs: bool, first_in_group: bool) -> list[Cell]:
    """The row label cells; the setting is printed only where its group starts, as in the study."""
    cells = [Cell(str(row["run"]) if first_in_group else "")] if many_runs else []
    cells.append(Cell(str(row["setting"]) if first_in_group else ""))
    cells.append(Cell(str(row["series"])))
    return cells


def _time_cell(cell_row: pd.Series | None, best: bool) -> Cell:
    if cell_row is None:
        return Cell(MISSING, muted=True, note="not measured")
    if cell_row["status"] != "ok":
        return Cell(str(cell_row["status"]), muted=True, note=str(cell_row["error"]))
    median, low, high = cell_row["median_ms"], cell_row["ci_low_ms"], cell_row["ci_high_ms"]
    note = f"median of {int(cell_row['n_samples'])} samples; 95% CI of the median {low:g} to {high:g} ms"
    flags = []
    if cell_row["noisy"]:
        flags.append("noisy")
        note += "; noisy: IQR above 10% of the median"
    if cell_row.get("sync_bound") in (True, "True"):  # absent from runs recorded before it existed
        flags.append("sync-bound")
        note += "; sync-bound: one synchronisation costs more than 5% of the median"
    if cell_row.get("gpu_throttled") in (True, "True"):
        flags.append("throttled")
        note += "; throttled: the GPU slowed down while timed (power or thermal limit, see gpu_telemetry)"
    flag = ", ".join(flags)
    return Cell(f"{fmt_ms(median)} ({fmt_ms(low)}–{fmt_ms(high)})", best=best, note=note, flag=flag)


def _grouped(sub: pd.DataFrame) -> Iterator[tuple[bool, tuple, dict[str, pd.Series]]]:
    """Rows of a study-style table: one per (run, setting, series), its passes side by side, each with
    whether it starts a new (run, setting) group."""
    rows: dict[tuple, dict[str, pd.Series]] = {}
    for _, row in sub.iterrows():
        rows.setdefault(tuple(row[k] for k in ROW_KEYS), {})[row["pass"]] = row
    previous: tuple | None = None
    for key, by_pass in rows.items():
        yield key[:GROUP_SIZE] != previous, key, by_pass
        previous = key[:GROUP_SIZE]


RowFiller = Callable[[tuple, dict[str, pd.Series], list[Cell], dict[str, object]], None]


def _setting_rows(sub: pd.DataFrame, many_runs: bool, record_keys: Sequence[str],
                  fill: RowFiller) -> tuple[tuple[tuple[Cell, ...], ...], pd.DataFrame, frozenset[int]]:
    """The rows of a per-setting table: the label cells and the CSV record's key columns of each row, with
    ``fill(key, by_pass, cells, record)`` adding the table's own columns; plus where each group starts."""
    rows: list[tuple[Cell, ...]] = []
    data: list[dict[str, object]] = []
    starts: set[int] = set()
    for first, key, by_pass in _grouped(sub):
        if first:
            starts.add(len(rows))
        any_row = next(iter(by_pass.values()))
        cells = key_cells(any_row, many_runs, first)
        record: dict[str, object] = {k: any_row[k] for k in record_keys}
        fill(key, by_pass, cells, record)
        rows.append(tuple(cells))
        data.append(record)
    return tuple(rows), pd.DataFrame(data), frozenset(starts)


def _best_medians(sub: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    """Fastest median per (run, device, pass): the study bolds the best CPU and the best GPU value."""
    ok = sub[sub["status"] == "ok"]
    return {key: float(v) for key, v in ok.groupby(["run", "device", "pass"])["median_ms"].min().items()}


def _at_batch(frame: pd.DataFrame, workload: str, phase: str, choice: BatchChoice) -> pd.DataFrame:
    return frame[(frame["workload"] == workload) & (frame["phase"] == phase)
                 & (frame["batch_size"] == choice.batch_size)]


def study_table(frame: pd.DataFrame, workload: str, phase: str, choice: BatchChoice, many_runs: bool) -> Table:
    """Table 3 of the study for one workload phase at one batch size, with confidence intervals."""
    sub = _at_batch(frame, workload, phase, choice)
    passes = passes_in(sub)
    best = _best_medians(sub)

    def fill(key: tuple, by_pass: dict[str, pd.Series], cells: list[Cell], record: dict[str, object]) -> None:
        for pass_ in passes:
            cell_row = by_pass.get(pass_)
            is_best = (cell_row is not None and cell_row["status"] == "ok"
                       and cell_row["median_ms"] == best.get((key[0], key[1], pass_)))
            cells.append(_time_cell(cell_row, is_best))
            record.update(_pass_record(pass_, cell_row, is_best))

    rows, data, starts = _setting_rows(sub, many_runs, ("run", "run_id", "hostname", "workload", "phase", "setting",
                                                        *ROW_KEYS[1:7], "batch_size"), fill)
    label = workload_label(workload, phase)
    header = (("run",) if many_runs else ()) + ("setting", "framework [variant]") + tuple(
        f"{p} ms (95% CI)" for p in passes)
    caption = (f"Median time per batch in milliseconds at {choice.describe()}, with the 95% confidence "
               "interval of the median; the fastest value per run and device is highlighted.")
    return Table(f"study-{slugify(label)}", f"{label}: time per batch", caption, header, rows, data, starts)


def _pass_record(pass_: str, row: pd.Series | None, best: bool) -> dict[str, object]:
    if row is None:
        return {f"{pass_}_status": ""}
    return {
        f"{pass_}_status": row["status"], f"{pass_}_median_ms": row["median_ms"],
        f"{pass_}_ci_low_ms": row["ci_low_ms"], f"{pass_}_ci_high_ms": row["ci_high_ms"],
        f"{pass_}_n_samples": row["n_samples"], f"{pass_}_noisy": bool(row["noisy"]), f"{pass_}_best": best,
    }


def efficiency_table(frame: pd.DataFrame, workload: str, phase: str, choice: BatchChoice,
                     many_runs: bool) -> Table:
    """Throughput, achieved GFLOP/s (and its share of the calibrated peak) and memory at one batch size."""
    sub = _at_batch(frame, workload, phase, choice)
    passes = passes_in(sub)

    def fill(key: tuple, by_pass: dict[str, pd.Series], cells: list[Cell], record: dict[str, object]) -> None:
        for pass_ in passes:
            row = by_pass.get(pass_)
            ok = row is not None and row["status"] == "ok"
            values = {name: (float(row[name]) if ok and row is not None else math.nan)
                      for name in ("samples_per_s", "gflops_per_s", "peak_fraction", "memory_mb")}
            cells += [Cell(fmt_num(values["samples_per_s"], 0)), Cell(fmt_num(values["gflops_per_s"], 2)),
                      Cell(fmt_num(100 * values["peak_fraction"], 1)), Cell(fmt_num(values["memory_mb"], 1))]
            record.update({f"{pass_}_{name}": value for name, value in values.items()})

    rows, data, starts = _setting_rows(sub, many_runs, ("run", "workload", "phase", "setting", *ROW_KEYS[1:7],
                                                        "batch_size"), fill)
    label = workload_label(workload, phase)
    header = (("run",) if many_runs else ()) + ("setting", "framework [variant]") + tuple(
        f"{p} {col}" for p in passes for col in ("samples/s", "GFLOP/s", "% of peak", "memory MB"))
    caption = (f"At {choice.describe()}. GFLOP/s counts 2 FLOPs per multiply-accumulate of the canonical "
               "network; the gradient pass is estimated at 3x the forward FLOPs. % of peak: share of the "
               "float32 matrix-multiply peak calibrated for that thread count (blank without calibration). "
               "Memory: on the CPU the rise of the peak resident set over the worker's baseline, on a GPU "
               "the allocator's peak.")
    return Table(f"efficiency-{slugify(label)}", f"{label}: throughput, GFLOP/s and memory", caption, header,
                 rows, data, starts)


def failures_table(frame: pd.DataFrame) -> Table:
    """Every case without a timing, with its status (failed, crashed, timeout, oom, ...) and reason."""
    columns = ("run", "workload_label", "pass", "series", "setting", "batch_size", "status", "error")
    failed = frame[frame["status"] != "ok"] if not frame.empty else frame
    rows = tuple(
        tuple(Cell(str(row[c]), muted=(c == "error")) for c in columns) for _, row in failed.iterrows()
    )
    header = ("run", "workload", "pass", "framework [variant]", "setting", "batch", "status", "reason")
    columns_csv = ["run", "run_id", "key", "workload", "phase", "pass", "framework", "variant", "precision",
                   "device", "threads", "batch_size", "status", "error"]
    data = failed[columns_csv] if not failed.empty else pd.DataFrame(columns=columns_csv)
    caption = f"{len(rows)} case(s) produced no timing." if rows else "Every case produced a timing."
    return Table("failures", "Cases that failed", caption, header, rows, data.reset_index(drop=True))


def slugify(label: str) -> str:
    """A file-name-safe form of a label taken from results: letters, digits and dashes only."""
    return "".join(ch if ch.isalnum() else "-" for ch in label.lower()).strip("-")


def workload_phases(frame: pd.DataFrame) -> Sequence[tuple[str, str]]:
    """(workload, phase) pairs present, in the frame's order (definition order of the workloads)."""
    pairs = zip(frame["workload"], frame["phase"], strict=True)
    return list(dict.fromkeys(pairs))
