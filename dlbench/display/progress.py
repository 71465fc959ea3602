"""Terminal output: the progress bar over cases and the summary table (rich). Display only.

Names and statuses come from stored runs: they are shown through :func:`dlbench.display.terminal.plain`, never as
markup (see :mod:`dlbench.display.terminal`).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from dlbench.cases.spec import CONV_ALGORITHMS, NATIVE_CONV, Case
from dlbench.display.terminal import make_console, plain, stdout_console, visible
from dlbench.formatting import MISSING, fmt_ms, fmt_num, fmt_speedup
from dlbench.machine.telemetry import throttled
from dlbench.record.results import CaseResult

console = make_console(stderr=True)
out = stdout_console()


def progress_bar(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.fields[last]}", markup=False), console=console, disable=quiet,
        transient=False,
    )


def describe(result: CaseResult) -> str:
    """One line on the last finished case (plain text: the progress column reads no markup)."""
    c = result.case
    head = f"{c.framework}/{c.variant} {c.workload_label} {c.pass_} {c.device} t{c.threads} b{c.batch_size}"
    summary = result.summary()
    if summary is None:
        return visible(f"{head}: {result.status}")
    return visible(f"{head}: {fmt_ms(summary.median, unit=True)}")


PASS_LABELS = {"forward": "fwd", "gradient": "grad"}
WIDE_CI = 0.05  # the table shows a median's CI only where it is wider than this (all are in the CSV)


def _cell(result: CaseResult | None, best: float | None) -> Text:
    if result is None:
        return Text("")
    summary = result.summary()
    if summary is None:
        return plain(result.status, "red")
    text = fmt_ms(summary.median)
    if summary.rel_ci_halfwidth > WIDE_CI:
        text += f" ±{summary.rel_ci_halfwidth:.0%}"
    cell = Text(text, style="bold green" if best is not None and summary.median == best else "")
    if summary.noisy:
        cell.append("~", style="yellow")
    if throttled(result.gpu_telemetry):
        cell.append("!", style="red")
    return cell


def _series(result: CaseResult) -> tuple[str, str, str]:
    """The column of a result: the two sides of an A/B run are two columns, not one overwriting the other;
    a convolution algorithm other than native is named with the variant (``eager fft``)."""
    c = result.case
    variant = c.variant if c.conv == NATIVE_CONV else f"{c.variant} {c.conv}"
    return c.framework, variant, result.environment


def _without_compared_algorithms(results: list[CaseResult]) -> list[CaseResult]:
    """The results of the main table: a case measured with other convolution algorithms beside native shows
    native there, and the algorithms in :func:`conv_summary_table`."""
    with_native = {r.case for r in results if r.case.conv == NATIVE_CONV}
    return [r for r in results
            if r.case.conv == NATIVE_CONV or msgspec.structs.replace(r.case, conv=NATIVE_CONV) not in with_native]


def _memory_mb(result: CaseResult) -> float | None:
    """What the case added to the worker's resident set on a CPU, the allocator's peak on a GPU."""
    value = result.memory.rise if result.case.device == "cpu" else result.memory.device_peak
    return None if value is None else value / 2**20


def conv_summary_table(results: Iterable[CaseResult]) -> Table | None:
    """Where several convolution algorithms were measured: one row per case (framework, variant, workload,
    pass, setting), one column per algorithm with its median, its speed-up against native (native /
    algorithm) and its memory; the fastest in bold green. None when there is nothing to compare."""
    groups: dict[Case, dict[str, CaseResult]] = {}
    for r in results:
        groups.setdefault(msgspec.structs.replace(r.case, conv=NATIVE_CONV), {})[r.case.conv] = r
    groups = {case: algos for case, algos in groups.items() if len(algos) > 1}
    if not groups:
        return None
    present = {a for algos in groups.values() for a in algos}
    algorithms = [a for a in CONV_ALGORITHMS if a in present]
    table = Table(title=plain("convolution algorithms: median ms · speed-up against native · MB added"),
                  title_justify="left")
    for name in ("workload", "pass", "setting", "framework"):
        table.add_column(name, no_wrap=True)
    for algorithm in algorithms:
        table.add_column(algorithm, justify="right", no_wrap=True)
    for case in sorted(groups):
        algos = groups[case]
        medians = {a: s.median for a, r in algos.items() if (s := r.summary()) is not None}
        best = min(medians.values()) if len(medians) > 1 else None
        native = medians.get(NATIVE_CONV)
        setting = f"{case.device} t{case.threads}" if case.device == "cpu" else case.device
        cells: list[Text] = []
        for algorithm in algorithms:
            result = algos.get(algorithm)
            if algorithm not in medians:
                cells.append(Text("") if result is None else plain(result.status, "red"))
                continue
            median = medians[algorithm]
            memory = _memory_mb(algos[algorithm])
            text = f"{fmt_ms(median)} · {fmt_speedup(native / median) if native else MISSING} · {fmt_num(memory)}"
            cells.append(Text(text, style="bold green" if median == best else ""))
        table.add_row(plain(case.workload_label), plain(PASS_LABELS.get(case.pass_, case.pass_)),
                      plain(f"{setting} b{case.batch_size}"), plain(f"{case.framework}/{case.variant}"), *cells)
    return table


def summary_table(results: Iterable[CaseResult], title: str = "dlbench results") -> Table:
    """The study's layout: one row per (workload, pass, setting, batch), one column per framework
    [variant] (and environment, in an A/B run of several ``--python`` environments), median ms (with the
    95% CI's half-width where it exceeds 5%); the fastest of each row in bold green, ``~`` marks noisy cases
    (IQR > 10% of the median), ``!`` GPU cases whose GPU slowed down while timed (power or thermal limit:
    :mod:`dlbench.machine.telemetry`). Narrow enough for an 80-column terminal."""
    results = _without_compared_algorithms(list(results))
    series = sorted({_series(r) for r in results})
    rows: dict[tuple[str, str, str, int], dict[tuple[str, str, str], CaseResult]] = {}
    for r in results:
        c = r.case
        setting = f"{c.device} t{c.threads}" if c.device == "cpu" else c.device
        key = (c.workload_label, c.pass_, setting, c.batch_size)
        rows.setdefault(key, {})[_series(r)] = r
    legend = "~ noisy, ! GPU throttled" if any(throttled(r.gpu_telemetry) for r in results) else "~ noisy"
    table = Table(title=plain(f"{title}: median ms ({legend})"), title_justify="left")
    table.add_column("workload", no_wrap=True)
    table.add_column("pass", no_wrap=True)
    table.add_column("setting", no_wrap=True)
    for framework, variant, environment in series:
        header = f"{framework}\n{variant}" + (f"\n{environment}" if environment else "")
        table.add_column(plain(header), justify="right", no_wrap=True, min_width=8)
    for key in sorted(rows):
        cells = rows[key]
        medians = [s.median for s in (cells[n].summary() for n in cells) if s is not None]
        best = min(medians) if len(medians) > 1 else None
        labels = (plain(key[0]), plain(PASS_LABELS.get(key[1], key[1])), plain(f"{key[2]} b{key[3]}"))
        table.add_row(*labels, *(_cell(cells.get(n), best) for n in series))
    return table
