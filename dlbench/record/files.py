"""Files in and out: input files read defensively, output files written whole.

Reading: only regular files, only up to a size that makes sense. ``open()`` on a FIFO blocks until a
writer appears and a device file never ends, so a ``run.json`` or a suite that is not a regular file would
hang ``history``, ``report`` or ``run`` forever. The file is opened without blocking and its type checked
on the open descriptor (no race between the check and the read); anything but a regular file, or a file
above the limit, is refused with a one-line error.

Writing: through a temporary file in the same directory, synced and renamed over the target, so that
a reader (or a crash) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from dlbench.errors import DlbenchError
from dlbench.formatting import MiB


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


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a torn one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared like any file
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable: without this, a reboot can bring back the old file (or none),
    and the README promises that a reboot keeps every finished case."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    """Write an output file whole (:func:`atomic_write`); a one-line error if that is impossible."""
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise DlbenchError(f"cannot write {path}: {exc.strerror or exc}") from None
