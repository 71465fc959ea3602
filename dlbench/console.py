"""Terminal output: the progress bar over cases and the summary table (rich). Display only."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dlbench.results import CaseResult

console = Console(stderr=True)
out = Console()


def progress_bar(quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"), console=console, disable=quiet, transient=False,
    )


def describe(result: CaseResult) -> str:
    c = result.case
    head = f"{c.framework}/{c.variant} {c.workload_label} {c.pass_} {c.device} t{c.threads} b{c.batch_size}"
    summary = result.summary()
    if summary is None:
        return f"{head}: [red]{result.status}[/red]"
    return f"{head}: {summary.median:.3f} ms"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def summary_table(results: Iterable[CaseResult], title: str = "dlbench results") -> Table:
    table = Table(title=title, show_lines=False)
    for column in ("workload", "pass", "framework", "device", "thr", "batch", "median ms", "± CI",
                   "samples/s", "1st call ms", "rise MB", "status"):
        table.add_column(column, justify="right" if column not in ("workload", "pass", "framework",
                                                                    "status") else "left")
    for r in sorted(results, key=lambda r: (r.case.workload, r.case.phase, r.case.pass_, r.case.device,
                                            r.case.threads, r.case.batch_size, r.case.framework)):
        c = r.case
        s = r.summary()
        ci = "" if s is None else f"{(s.ci_high - s.ci_low) / 2:.2f}"
        rate = "" if s is None else f"{c.batch_size / (s.median / 1e3):.1f}"
        rise = r.memory.rise
        status = r.status if r.ok else f"[red]{r.status}[/red]"
        if s is not None and s.noisy:
            status += " [yellow](noisy)[/yellow]"
        table.add_row(c.workload_label, c.pass_, f"{c.framework}/{c.variant}", c.device, str(c.threads),
                      str(c.batch_size), _fmt(s.median if s else None, 3), ci, rate, _fmt(r.first_call_ms, 1),
                      _fmt(rise / 2**20 if rise is not None else None, 1), status)
    return table
