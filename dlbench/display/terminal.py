"""The one way dlbench writes to a terminal: consoles that read no markup, texts that cannot restyle it.

Almost every string on screen comes from somewhere dlbench does not control: variant names and error texts
stored in a ``run.json``, suite descriptions, paths typed by the user. Read as rich markup, a stored ``[/]``
crashes the display after the case was measured, and ``[white on white]`` or an escape sequence hides or
restyles what follows. So consoles are created here with markup off, styles are given as
:class:`rich.text.Text` styles (never inline), and :func:`plain` makes control characters visible.

A width too small for anything (``COLUMNS=0``, a 10-column pane) is raised to :data:`MIN_WIDTH`: rich would
otherwise fold the results path and the resume hint into unreadable slivers.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

MIN_WIDTH = 60
# Off a terminal (CI logs, pipes) rich would wrap every table at 80 columns and fold the long case keys:
# standard output is made this wide instead, unless COLUMNS says otherwise.
LOG_WIDTH = 200

# Control characters (C0, DEL, C1) and the bidirectional overrides that reorder what a terminal shows.
_BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_VISIBLE = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
            for code in (*range(0x00, 0x20), *range(0x7F, 0xA0), *_BIDI) if chr(code) not in "\n\t"}


def visible(text: object) -> str:
    """``text`` with control characters and direction overrides written as escapes (``\\x1b``)."""
    return str(text).translate(_VISIBLE)


def plain(text: object, style: str = "") -> Text:
    """A stored or user-given string as literal terminal text in ``style``: no markup, no control codes."""
    return Text(visible(text), style=style)


def make_console(*, stderr: bool = False, log_width: int | None = None, **options: Any) -> Console:
    """A console with markup off. ``log_width``: the width to use when the stream is not a terminal and
    ``COLUMNS`` is unset (CI logs: wide tables instead of folded ones)."""
    stream = sys.stderr if stderr else sys.stdout
    columns = os.environ.get("COLUMNS", "")
    columns_given = columns.isdigit() and int(columns) > 0
    if log_width is not None and "width" not in options and not columns_given and not _isatty(stream):
        options["width"] = log_width
    console = Console(stderr=stderr, markup=False, **options)
    if console.width < MIN_WIDTH:
        console.width = MIN_WIDTH
    return console


def stdout_console() -> Console:
    """The console of a command's main output (tables), wide off a terminal (:data:`LOG_WIDTH`)."""
    return make_console(log_width=LOG_WIDTH)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
