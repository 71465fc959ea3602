"""``dlbench history RESULTS_ROOT``: every stored run of each case in order, with its change points."""

from __future__ import annotations

from pathlib import Path

import click

from dlbench.cli.paths import NonEmptyPath, check_output_file
from dlbench.display.terminal import plain, stdout_console
from dlbench.errors import DlbenchError
from dlbench.record.files import write_text
from dlbench.regress.history import build_history
from dlbench.regress.history_render import history_html, history_json, history_table

HTML_FILE = "history.html"
JSON_FILE = "history.json"


@click.command("history")
@click.argument("results_root", type=NonEmptyPath(path_type=Path))
@click.option("--case", "patterns", multiple=True, metavar="PATTERN",
              help="Only cases whose key matches a glob (lenet/*/forward/*) or holds a substring (lstm).")
@click.option("--output", "-o", type=NonEmptyPath(path_type=Path, file_okay=False),
              help=f"Also write {HTML_FILE} (charts) and {JSON_FILE} into this directory.")
@click.option("--repo", type=NonEmptyPath(path_type=Path, file_okay=False), default=Path("."),
              show_default=True, help="Git repository that orders the runs' commits.")
def command(results_root: Path, patterns: tuple[str, ...], output: Path | None, repo: Path) -> None:
    """Show how each case's median time evolved over the runs under RESULTS_ROOT and where it changed.

    Runs are ordered by git commit when every run recorded one that REPO knows, else by creation time.
    Change points come from a penalised piecewise-constant fit of the per-run medians.
    """
    if output is not None:
        for name in (HTML_FILE, JSON_FILE):
            check_output_file(output / name)
    history = build_history(results_root, patterns, repo)
    console = stdout_console()
    for line in history.skipped:
        console.print(plain(f"skipped: {line}", "yellow"))
    console.print(history_table(history))
    if output is not None:
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DlbenchError(f"cannot create {output}: {exc.strerror}") from None
        write_text(output / HTML_FILE, history_html(history))
        write_text(output / JSON_FILE, history_json(history))
        console.print(plain(f"history: {output / HTML_FILE}"), soft_wrap=True)
