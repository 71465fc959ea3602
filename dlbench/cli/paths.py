"""Path arguments and output files: what a command may write, and what it must refuse to.

File-safety promises (README, "What dlbench writes"): a command writes only the files it names, never onto
one of its inputs, never onto a run's record (``run.json``, ``results.csv``), and never where an empty path
(``-o ''``, which the OS reads as the current directory) would put it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from dlbench.errors import DlbenchError
from dlbench.record.store import RECORD_FILES, RUN_FILE, resolve_run_file


class NonEmptyPath(click.Path):
    """``click.Path`` that refuses the empty string and names that are not valid UTF-8.

    ``Path('')`` is ``.``, so ``-o ''`` would silently write into (or ``--resume ''`` resume) the current
    directory. A name with bytes that are not UTF-8 (0xff under ``LC_ALL=C``) reaches Python as surrogate
    escapes, which no UTF-8 record, CSV or page can hold: such a path is refused up front, shown with the
    bytes escaped, rather than failing half-way through a run."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value == "":
            self.fail("an empty path names nothing (write . for the current directory)", param, ctx)
        text = os.fsdecode(value) if isinstance(value, bytes | os.PathLike) else value
        if isinstance(text, str):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                shown = os.fsencode(text).decode("utf-8", "backslashreplace")
                self.fail(f"'{shown}' is not valid UTF-8; dlbench writes paths into UTF-8 records and pages, "
                          "so rename it or choose another path", param, ctx)
        return super().convert(value, param, ctx)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def is_run_file(path: Path) -> bool:
    """A run's own record: its run.json, its journal run.jsonl or its results.csv (a file beside a run.json)."""
    return path.name in RECORD_FILES and (path.parent / RUN_FILE).exists()


def check_output_file(output: Path, inputs: Iterable[Path] = (), option: str = "--output") -> None:
    """Refuse to write ``output`` onto an input, onto a run record, or onto anything but a regular file."""
    if output.is_dir():
        raise DlbenchError(f"{option} {output} is a directory; name a file")
    if output.exists() and not output.is_file():
        raise DlbenchError(f"{option} {output} exists and is not a regular file; name another file")
    for given in inputs:
        source = resolve_run_file(given)
        if _same_file(output, source) or _same_file(output, given):
            raise DlbenchError(f"{option} {output} is an input of this command; it is never overwritten")
    if is_run_file(output):
        raise DlbenchError(f"{option} {output} is the record of a dlbench run; it is never overwritten")
