"""Where the regression commands put their text: files written atomically, and a terminal wide enough.

CI logs are not terminals; rich would then wrap every table at 80 columns and fold the long case keys,
so off a terminal the console is made wide instead.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from dlbench.errors import DlbenchError
from dlbench.store import atomic_write
from dlbench.terminal import make_console

LOG_WIDTH = 200


def write_text(path: Path, text: str) -> None:
    """Write a report file whole (readers never see half of it); a one-line error if that is impossible."""
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise DlbenchError(f"cannot write {path}: {exc.strerror or exc}") from None


def stdout_console() -> Console:
    return make_console(log_width=LOG_WIDTH)
