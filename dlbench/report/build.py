"""``build_report``: stored runs in, a report directory out (index.html, tables/*.csv, plots/*.svg).

This module only arranges: which tables and figures exist, in which section, under which file name.
The numbers come from :mod:`dlbench.report.frame`, the drawing from :mod:`plots`, the markup from
:mod:`html`. Renderers never measure: a report is built from stored results alone, so it can be rebuilt
at any time, on any machine, from the run directories.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dlbench.errors import DlbenchError
from dlbench.record.files import atomic_write, read_regular_text
from dlbench.record.store import now_iso
from dlbench.report import speedups
from dlbench.report.convolutions import SECTION_INTRO, conv_figure, conv_table, layer_flops_table, native_only
from dlbench.report.env_table import environment_table, packages_table
from dlbench.report.frame import LoadedRun, combined_csv, load_runs, passes_in, results_frame, workload_label
from dlbench.report.html import Section, render_page
from dlbench.report.plots import Plot, Style, series_styles, setting_figure, thread_figure
from dlbench.report.tables import (
    BatchChoice,
    Table,
    choose_batch,
    efficiency_table,
    failures_table,
    slugify,
    study_table,
    workload_phases,
)

INDEX = "index.html"
TABLES_DIR = "tables"
PLOTS_DIR = "plots"
RESULTS_TABLE = "results"  # every stored row of every run, with the run's label
MANIFEST = ".dlbench-report.json"  # the files this directory's report wrote: the only ones it may replace
MANIFEST_LIMIT = 2**20
OWN_FILE = re.compile(rf"{re.escape(INDEX)}|{TABLES_DIR}/[\w.-]+\.csv|{PLOTS_DIR}/[\w.-]+\.svg")


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    sections: tuple[Section, ...]
    results_csv: str


def build_report(run_dirs: list[Path], output: Path, batch_size: int | None = None) -> Path:
    """Write the report of ``run_dirs`` into the directory ``output`` and return its ``index.html``.

    ``batch_size`` chooses the batch size of the tables (default: each workload's paper batch size; the
    nearest measured size where that was not measured, which the tables then say).
    """
    if batch_size is not None and batch_size < 1:
        raise DlbenchError(f"--batch-size must be a positive integer, got {batch_size}")
    runs = load_runs([Path(p) for p in run_dirs])
    report = assemble(runs, batch_size)
    return write_report(report, Path(output))


def assemble(runs: Sequence[LoadedRun], batch_size: int | None) -> Report:
    """Decide the page: environment, one section per workload phase (the frameworks' own convolutions),
    speed-ups, convolution algorithms (where more than one was measured), failures."""
    everything = results_frame(runs)
    frame = native_only(everything)
    sections = [Section("environment", "Runs and environment", items=(environment_table(runs),),
                        folded=(packages_table(runs),))]
    if frame.empty:
        sections.append(Section("results", "Results", intro="These runs hold no results yet."))
        return Report(_title(runs), _subtitle(runs), tuple(sections), combined_csv(runs))
    styles = series_styles(list(dict.fromkeys(frame["series"])))
    choices: dict[tuple[str, str], BatchChoice] = {}
    for workload, phase in workload_phases(frame):
        sub = frame[(frame["workload"] == workload) & (frame["phase"] == phase)]
        choice = choose_batch(sub, workload, batch_size)
        if choice is None:
            continue
        choices[(workload, phase)] = choice
        sections.append(workload_section(runs, sub, workload, phase, choice, styles))
    many_runs = len(runs) > 1
    timed = speedups.timed_at_chosen(frame, choices)
    found = (speedups.thread_speedups(timed, many_runs), speedups.gpu_speedups(timed, many_runs),
             speedups.variant_speedups(timed, many_runs), speedups.precision_speedups(timed, many_runs))
    speedup_tables = tuple(t for t in found if t is not None)
    sections.append(Section(
        "speedups", "Speed-ups", items=speedup_tables,
        intro="" if speedup_tables else "Nothing to compare: these runs measured a single thread count, "
        "no GPU next to a CPU, and no variant next to its default."))
    conv = conv_table(everything, many_runs)
    if conv is not None:
        figure = conv_figure(everything, "conv-algorithms-time-memory", "Convolution algorithms: time against memory")
        layers = layer_flops_table(everything, many_runs)
        items = (conv, *((layers,) if layers is not None else ()), *((figure,) if figure is not None else ()))
        sections.append(Section("conv", "Convolution algorithms", intro=SECTION_INTRO, items=items))
    sections.append(Section("failures", "Failed cases", items=(failures_table(everything),)))
    return Report(_title(runs), _subtitle(runs), tuple(sections), combined_csv(runs))


def workload_section(runs: Sequence[LoadedRun], sub: pd.DataFrame, workload: str, phase: str,
                     choice: BatchChoice, styles: dict[str, Style]) -> Section:
    """The study table, the efficiency table and the figures of one workload phase."""
    label = workload_label(workload, phase)
    slug = slugify(label)
    passes = passes_in(sub)
    many_runs = len(runs) > 1
    items: list[Table | Plot] = [study_table(sub, workload, phase, choice, many_runs),
                                 efficiency_table(sub, workload, phase, choice, many_runs)]
    for index, run in enumerate(runs):
        mine = sub[sub["run_order"] == index]
        prefix = f"{run.label}: " if many_runs else ""
        for (device, threads), setting in mine.groupby(["device", "threads"], sort=False):
            name = str(setting["setting"].iloc[0])
            memory = "memory added (MB)" if device == "cpu" else "device peak memory (MB)"
            items.append(setting_figure(
                setting, passes, styles, f"{slug}-run{index + 1}-{device}-t{int(threads)}",
                f"{prefix}{label}, {name}", run.peak_gflops(str(device), int(threads)), memory))
        at_batch = mine[mine["batch_size"] == choice.batch_size]
        figure = thread_figure(at_batch, passes, styles, f"{slug}-run{index + 1}-threads",
                               f"{prefix}{label}, CPU speed-up at batch size {choice.batch_size}")
        if figure is not None:
            items.append(figure)
    return Section(f"w-{slug}", label, intro=choice.describe().capitalize() + ".", items=tuple(items))


def _title(runs: Sequence[LoadedRun]) -> str:
    return "dlbench report" + (f": {runs[0].label}" if len(runs) == 1 else f": {len(runs)} runs")


def _subtitle(runs: Sequence[LoadedRun]) -> str:
    dates = ", ".join(f"{run.label} started {run.record.created or '?'}" for run in runs)
    return f"Built {now_iso()} from stored results. {dates}."


def write_report(report: Report, output: Path) -> Path:
    """Write CSV tables, SVG figures and the page, and list them in the directory's manifest.

    A report rebuilt into the same directory removes the files of the previous report that it no longer
    writes (so nothing stale sits beside the new page), and only those: the manifest says which files a
    report wrote. A file that is in the way and not in the manifest (a user's own, or a report of an older
    dlbench) is never overwritten: the report is refused instead.
    """
    files: dict[str, str] = {}
    hrefs: dict[str, str] = {}
    for section in report.sections:
        for item in (*section.items, *section.folded):
            if isinstance(item, Table):
                name = f"{TABLES_DIR}/{item.slug}.csv"
                files[name] = item.data.to_csv(index=False)
            else:
                name = f"{PLOTS_DIR}/{item.slug}.svg"
                files[name] = item.svg
            hrefs[item.slug] = name
    files[f"{TABLES_DIR}/{RESULTS_TABLE}.csv"] = report.results_csv
    files[INDEX] = render_page(report.title, report.subtitle, report.sections, hrefs)
    try:
        for directory in (output, output / TABLES_DIR, output / PLOTS_DIR):
            directory.mkdir(parents=True, exist_ok=True)
        written_before = read_manifest(output)
        for name in files:
            path = output / name
            if name not in written_before and (path.exists() or path.is_symlink()):
                raise DlbenchError(f"{path} is in the way and was not written by dlbench report; "
                                   "it is never overwritten: choose another --output or move it")
        # the manifest lists every file before it is written, so an interrupted build is cleaned up next time
        atomic_write(output / MANIFEST, manifest_text([*written_before, *files]))
        for name, text in files.items():
            atomic_write(output / name, text)
        for name in written_before - set(files):
            stale = output / name
            if stale.is_file() and not stale.is_symlink():
                stale.unlink()
        atomic_write(output / MANIFEST, manifest_text(files))
    except OSError as exc:
        raise DlbenchError(f"cannot write the report into {output}: {exc.strerror or exc}") from None
    return output / INDEX


def manifest_text(names: Iterable[str]) -> str:
    return json.dumps({"written_by": "dlbench report", "files": sorted(set(names))}, indent=1,
                      allow_nan=False) + "\n"


def read_manifest(output: Path) -> set[str]:
    """The files an earlier report wrote into ``output``: only names a report writes (``index.html``,
    ``tables/*.csv``, ``plots/*.svg``), whatever else a damaged or edited manifest lists."""
    path = output / MANIFEST
    if not path.exists():
        return set()
    try:
        data = json.loads(read_regular_text(path, MANIFEST_LIMIT, "report manifest"))
    except (DlbenchError, ValueError):
        return set()  # unreadable: nothing is known to be ours, so nothing is removed or overwritten
    names = data.get("files") if isinstance(data, dict) else None
    if not isinstance(names, list):
        return set()
    return {name for name in names if isinstance(name, str) and OWN_FILE.fullmatch(name)}
