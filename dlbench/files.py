"""Reading input files defensively: only regular files, only up to a size that makes sense.

``open()`` on a FIFO blocks until a writer appears and a device file never ends, so a ``run.json`` or a
suite that is not a regular file would hang ``history``, ``report`` or ``run`` forever. The file is opened
without blocking and its type checked on the open descriptor (no race between the check and the read);
anything but a regular file, or a file above the limit, is refused with a one-line error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dlbench.errors import DlbenchError

MiB = 2**20


def read_regular_text(path: Path, limit: int, what: str, error: type[DlbenchError] = DlbenchError) -> str:
    """The UTF-8 text of ``path`` (``what`` names it in errors, e.g. "suite file"), raising ``error`` when it
    is missing, not a regular file, larger than ``limit`` bytes, unreadable or not UTF-8."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is not a regular file")
        if info.st_size > limit:
            raise error(f"{what} {path} is {info.st_size / MiB:.1f} MiB; the limit is {limit / MiB:g} MiB")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew after the check
        raise error(f"{what} {path} is larger than the limit of {limit / MiB:g} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text") from None
