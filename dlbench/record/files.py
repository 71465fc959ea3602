"""Files in and out: input files read defensively, output files written whole.

Reading: only regular files, only up to a size that makes sense. ``open()`` on a FIFO blocks until a
writer appears and a device file never ends, so a ``run.json`` or a suite that is not a regular file would
hang ``history``, ``report`` or ``run`` forever. The file is opened without blocking and its type checked
on the open descriptor (no race between the check and the read); anything but a regular file, or a file
above the limit, is refused with a one-line error.

Writing: through a temporary file in the same directory, synced and renamed over the target, so that
a reader (or a crash) sees the old file or the new one, never half of one. A file that grows a line at a
time (a run's journal and its ``results.csv``) is appended to with :class:`AppendFile` instead: one synced
write per line, so that storing a line costs the same however long the file already is.
"""

from __future__ import annotations

import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from dlbench.errors import DlbenchError
from dlbench.formatting import MiB


def read_regular_text(path: Path, limit: int, what: str, error: type[DlbenchError] = DlbenchError) -> str:
    """The UTF-8 text of ``path`` (``what`` names it in errors, e.g. "suite file"), raising ``error`` when it
    is missing, not a regular file, larger than ``limit`` bytes, unreadable or not UTF-8."""
    data = read_regular_bytes(path, limit, what, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text") from None


def read_regular_bytes(path: Path, limit: int, what: str, error: type[DlbenchError] = DlbenchError) -> bytes:
    """The bytes of ``path``, with the checks of :func:`read_regular_text` but no decoding: a run record of
    megabytes goes straight to the JSON decoder, which reads UTF-8 itself."""
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
    return data


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write ``text`` (UTF-8 when it is a string) to ``path`` so that readers see the old or the new file,
    never a torn one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared like any file
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8") if isinstance(text, str) else text)
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


_DATASYNC = getattr(os, "fdatasync", os.fsync)  # the data and the size, not the times: all a reader needs


class AppendFile:
    """A file opened for appending whole lines, each one synced before :meth:`append` returns (unless
    ``sync`` is off: for a file that can be rebuilt from another, the sync is the costly part of a line).

    A failed or interrupted append (a full disk, Ctrl-C between two partial writes) truncates the file back
    to its last whole line before the error goes on, so a run that survives the error never leaves half a
    line in the middle of the file; only a process killed inside the write can leave one, and only at the
    end (which the journal's reader drops)."""

    def __init__(self, path: Path, sync: bool = True) -> None:
        self.path = path
        self.sync = sync
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
        try:
            self.size = os.fstat(self._fd).st_size
        except OSError:
            os.close(self._fd)
            raise

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            written = 0
            while written < len(view):
                written += os.write(self._fd, view[written:])
            if self.sync:
                _DATASYNC(self._fd)
        except BaseException:
            try:
                os.ftruncate(self._fd, self.size)
            except OSError:
                pass  # the reader drops an incomplete last line; the error below says what went wrong
            raise
        self.size += len(view)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and the SIGTERM that `dlbench run` turns into one


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM) back until the block ends, then deliver it as it would have been.

    Storing a result is a synced journal line plus the bookkeeping of it in memory; a Ctrl-C between the two
    would leave a line on disk that the record being finished does not hold (and a reader that saw the line
    would see the case vanish), or, inside the sync, truncate a line that a reader already saw. Held back
    for the few microseconds of the block, the interrupt lands after it, where the run stops cleanly. Only
    the main thread receives signals (and only it may set handlers): elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, FrameType | None]] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append((signum, frame))

    previous = {sig: signal.signal(sig, hold) for sig in HELD_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum, frame in caught[:1]:  # the first is enough: it ends the run
            handler = previous[signal.Signals(signum)]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def write_text(path: Path, text: str) -> None:
    """Write an output file whole (:func:`atomic_write`); a one-line error if that is impossible."""
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise DlbenchError(f"cannot write {path}: {exc.strerror or exc}") from None
