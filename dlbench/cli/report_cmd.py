"""``dlbench report``: tables and plots of one or more stored runs as a self-contained HTML page + CSV."""

from __future__ import annotations

from pathlib import Path

import click

from dlbench.cases.spec import MAX_BATCH_SIZE
from dlbench.cli.options import Number
from dlbench.cli.paths import NonEmptyPath


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=NonEmptyPath(path_type=Path))
@click.option("--output", "-o", required=True, type=NonEmptyPath(path_type=Path, file_okay=False),
              help="Directory for index.html, tables/*.csv and plots/*.svg.")
@click.option("--batch-size", "-b", type=Number(1, MAX_BATCH_SIZE, integer=True),
              help="Batch size of the tables [each workload's paper batch size, else the nearest measured].")
def command(run_dirs: tuple[Path, ...], output: Path, batch_size: int | None) -> None:
    """Write a report of RUN_DIR... (several runs, e.g. two machines or a CPU and a GPU run, are combined).

    The page opens offline: figures are embedded, nothing is fetched. Tables are also written as CSV.
    """
    from dlbench.report import build_report  # matplotlib and pandas load only for this command

    index = build_report(list(run_dirs), output, batch_size)
    click.echo(f"report: {index}")
