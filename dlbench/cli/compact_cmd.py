"""``dlbench compact RUN_DIR...``: fold each run's journal (``run.jsonl``) into its ``run.json``.

A run compacts itself when it starts, resumes and finishes; a run that was killed keeps its newest cases in
``run.jsonl`` until it is resumed. Every dlbench command reads both files, but a tool that reads ``run.json``
alone (a script, another benchmark tracker) would miss those cases: compacting hands it the whole record
without measuring anything. A run that is still writing is refused (its lock is held).
"""

from __future__ import annotations

from pathlib import Path

import click

from dlbench.cli.paths import NonEmptyPath
from dlbench.display.progress import out
from dlbench.display.terminal import plain
from dlbench.errors import DlbenchError
from dlbench.record.store import compact_run


@click.command("compact")
@click.argument("runs", nargs=-1, required=True, type=NonEmptyPath(path_type=Path))
def command(runs: tuple[Path, ...]) -> None:
    """Fold each run's journal into its run.json (exit 2 when one could not be compacted)."""
    failed = 0
    for directory in runs:
        try:
            record = compact_run(directory)
        except DlbenchError as exc:
            click.echo(f"dlbench: error: {exc}", err=True)
            failed += 1
            continue
        out.print(plain(f"{directory}: run {record.run_id}, {len(record.results)} result(s), "
                          f"status {record.status}"))
    if failed:
        raise click.exceptions.Exit(2)  # each failure was said on its own line
