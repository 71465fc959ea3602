"""Terminal output: the progress bar over cases and the summary table (rich). Display only.

Names and statuses come from stored runs: they are shown through :func:`dlbench.display.terminal.plain`, never as
markup (see :mod:`dlbench.display.terminal`).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from dlbench.display.terminal import make_console, plain, stdout_console, visible
from dlbench.formatting import fmt_ms
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
    """The column of a result: the two sides of an A/B run are two columns, not one overwriting the other."""
    return result.case.framework, result.case.variant, result.environment


def summary_table(results: Iterable[CaseResult], title: str = "dlbench results") -> Table:
    """The study's layout: one row per (workload, pass, setting, batch), one column per framework
    [variant] (and environment, in an A/B run of several ``--python`` environments), median ms (with the
    95% CI's half-width where it exceeds 5%); the fastest of each row in bold green, ``~`` marks noisy cases
    (IQR > 10% of the median), ``!`` GPU cases whose GPU slowed down while timed (power or thermal limit:
    :mod:`dlbench.machine.telemetry`). Narrow enough for an 80-column terminal."""
    results = list(results)
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
