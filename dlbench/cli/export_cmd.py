"""``dlbench export RUN_DIR --format FORMAT``: a run in the format of another benchmark-tracking tool."""

from __future__ import annotations

from pathlib import Path

import click

from dlbench.cli.paths import NonEmptyPath, check_output_file
from dlbench.record.export import EXPORTERS, METRICS, TIME, untimed_count
from dlbench.record.files import write_text
from dlbench.record.store import load_run


@click.command("export")
@click.argument("run_dir", type=NonEmptyPath(path_type=Path))
@click.option("--format", "format_", type=click.Choice(list(EXPORTERS)), default="github-action-benchmark",
              show_default=True,
              help="github-action-benchmark (customSmallerIsBetter), bencher (BMF) or json (flat rows).")
@click.option("--output", "-o", type=NonEmptyPath(path_type=Path, dir_okay=False),
              help="Write to this file instead of standard output.")
@click.option("--memory/--no-memory", default=True, show_default=True,
              help="Also export the memory readings (RSS rise, framework and device peaks).")
@click.option("--metric", type=click.Choice(METRICS), default=TIME, show_default=True,
              help="github-action-benchmark: median time in ms (customSmallerIsBetter) or throughput in "
                   "samples/s (customBiggerIsBetter, no memory entries). Bencher always gets both.")
def command(run_dir: Path, format_: str, output: Path | None, memory: bool, metric: str) -> None:
    """Export the run in RUN_DIR (a directory or its run.json) for github-action-benchmark, Bencher, or as
    flat JSON rows. Cases without a timing (failed, unavailable) cannot be tracked and are left out of the
    first two formats; their number is reported on standard error. A run with no timed case at all is
    refused (exit 2, one line): there is nothing to track, and an empty list fails the CI tools later."""
    if output is not None:
        check_output_file(output, [run_dir])
    record = load_run(run_dir)
    text = EXPORTERS[format_](record, memory, metric)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_text(output, text)
    left_out = untimed_count(record)
    if left_out and format_ != "json":
        click.echo(f"dlbench: {left_out} case(s) without a timing left out of the export", err=True)
