"""The parent's side of a child process: spawn it, read its messages against deadlines, end it, say why.

:class:`Child` starts ``python -m dlbench.process.boot`` (any interpreter: another virtualenv's python works as
long as it can import dlbench) in its own session, so that Ctrl-C reaches only the parent and one
``killpg`` takes the child and anything it started. The environment carries the placement's thread variables
from the start; the child pins itself before importing the job (see :mod:`dlbench.process.boot`).

:meth:`Child.receive` waits for the next message until an absolute deadline. It sleeps in ``select`` exactly
until that deadline (there is no fixed poll interval that a short timeout could fall between); only with a
memory limit does it wake every :data:`MEMORY_CHECK_S` to read the child's resident memory, and kill it above
the limit. It returns the message, or an :class:`Ended` that says why no message will come.

How the child ended (:meth:`Child.ending`) is decided by the parent, never by the child: our deadline or
our memory watchdog killed it; or the kernel's out-of-memory killer did (its kill counter, ``oom_kill`` in
``/proc/vmstat``, rose while the child lived); or a signal from elsewhere; or an exit code. The tail of what
the child printed on stderr, where a framework puts its own error, goes with it.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

from dlbench.process.gate import GATE_ENV, PIN_ENV
from dlbench.process.messages import Codec, Message
from dlbench.process.placement import Placement
from dlbench.process.turns import BATON_ENV, CONTINUE

MEMORY_CHECK_S = 0.1  # how often the memory watchdog reads the child's resident memory
EXIT_GRACE_S = 5.0  # after the pipe closed, how long the child may take to exit before it is killed
STDERR_TAIL = 400
VMSTAT = Path("/proc/vmstat")


class Ended(Enum):
    """Why :meth:`Child.receive` returned no message."""

    EXITED = "exited"  # the child closed its pipe: it exited or died (see Child.ending)
    TIMEOUT = "timeout"  # the deadline passed; the child was killed
    MEMORY = "memory"  # the child went above the memory limit; it was killed


class Cause(Enum):
    """How a child ended, as far as the parent can know."""

    EXIT = "exit"  # exit code 0 or not
    SIGNAL = "signal"  # killed by a signal that neither we nor the kernel's OOM killer sent
    TIMEOUT = "timeout"  # we killed it: a deadline passed
    MEMORY_LIMIT = "memory_limit"  # we killed it: above the memory limit
    KERNEL_OOM = "kernel_oom"  # SIGKILL while the kernel's OOM kill counter rose


@dataclass(frozen=True)
class Ending:
    """How a child ended: ``cause``, the raw return code and a description such as ``killed by SIGSEGV``."""

    cause: Cause
    returncode: int
    detail: str
    stderr: str  # the last few lines the child printed on stderr (and stdout), joined by " | "
    last_line: str  # the last non-empty line alone


@dataclass(frozen=True)
class ChildSpec:
    """What to start: the job's module (it defines ``child_main(job, channel)``), where, and how to watch it."""

    module: str
    placement: Placement
    codec: Codec
    env: Mapping[str, str] = field(default_factory=dict)  # on top of os.environ and the thread variables
    python: str = sys.executable
    memory_limit_mb: float | None = None
    baton: bool = False  # the child takes turns with others (dlbench.process.turns): give it a baton pipe
    gate: bool = False  # started ahead of its turn: imports unpinned, then waits (dlbench.process.gate)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.placement.environment())
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"  # the stderr tail really is the last thing the child said
        return env


class Child:
    """One running child. Use as a context manager: leaving it (normally, on an error or on Ctrl-C) kills
    the child's process group if it still runs, and removes its temporary files."""

    def __init__(self, spec: ChildSpec, job: Mapping[str, Any]) -> None:
        self.spec = spec
        self.job = job
        self.killed_for: Cause | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._baton = -1  # the write end of the baton pipe (ChildSpec.baton)
        self._gate = -1  # the write end of the gate pipe (ChildSpec.gate)
        self._buffer = b""
        self._pending: list[Message] = []
        self._oom_kills_at_start: int | None = None

    # ----- life cycle -----
    def __enter__(self) -> Child:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def directory(self) -> Path:
        """A private temporary directory of this child (also for files the job exchanges with it)."""
        assert self._tmp is not None, "child not started"
        return Path(self._tmp.name)

    @property
    def pid(self) -> int:
        assert self._proc is not None, "child not started"
        return self._proc.pid

    def start(self) -> None:
        import json

        self._tmp = tempfile.TemporaryDirectory(prefix="dlbench-child-")
        envelope = self.directory / "job.json"
        cores = list(self.spec.placement.cores)
        # a gated child pins itself once imported (dlbench.process.gate); the boot pins every other one first
        envelope.write_text(json.dumps({"module": self.spec.module, "cores": [] if self.spec.gate else cores,
                                        "job": self.job}))
        read_fd, write_fd = os.pipe()
        env = self.spec.environment()
        passed = [write_fd]
        if self.spec.baton:
            baton_read, self._baton = os.pipe()
            passed.append(baton_read)
            env[BATON_ENV] = str(baton_read)
        if self.spec.gate:
            gate_read, self._gate = os.pipe()
            passed.append(gate_read)
            env[GATE_ENV] = str(gate_read)
            env[PIN_ENV] = ",".join(str(core) for core in cores)
        self._oom_kills_at_start = kernel_oom_kills()
        try:
            with open(self.directory / "stderr.txt", "wb") as err:
                self._proc = subprocess.Popen(
                    [self.spec.python, "-m", "dlbench.process.boot", str(envelope), str(write_fd)],
                    env=env, pass_fds=tuple(passed), stdout=err, stderr=err,
                    stdin=subprocess.DEVNULL, start_new_session=True,  # Ctrl-C reaches only the parent
                )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            for fd in passed:
                os.close(fd)
        self._fd = read_fd

    def give_turn(self, signal: bytes = CONTINUE) -> None:
        """Hand the child the turn, with ``signal`` (:mod:`dlbench.process.turns`). A child that is gone is
        not an error here: its end is seen, and accounted for, where its messages are read."""
        if self._baton < 0:
            return
        try:
            os.write(self._baton, signal)
        except OSError:  # BrokenPipeError: the child closed its end, i.e. it exited
            pass

    def open_gate(self) -> None:
        """Let a gated child go on (:mod:`dlbench.process.gate`); like :meth:`give_turn`, a child that is gone
        is seen where its messages are read."""
        if self._gate < 0:
            return
        try:
            os.write(self._gate, b"g")
        except OSError:
            pass
        os.close(self._gate)  # the gate opens once
        self._gate = -1

    def close(self) -> None:
        self.kill()
        for fd in (self._fd, self._baton, self._gate):
            if fd >= 0:
                os.close(fd)
        self._fd = self._baton = self._gate = -1
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def kill(self, cause: Cause | None = None) -> None:
        """Kill the child and everything in its session, then reap it. ``cause`` records that we did it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None and cause is not None and self.killed_for is None:
            self.killed_for = cause
        try:  # even when the child itself is gone: what it started may live on in its group
            os.killpg(proc.pid, signal.SIGKILL)  # (the id stays reserved while the group has members)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()

    # ----- messages -----
    def receive(self, deadline: float | None) -> Message | Ended:
        """The next message, or why none will come. ``deadline`` is a ``time.monotonic()`` value."""
        while not self._pending:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                self.kill(Cause.TIMEOUT)
                return Ended.TIMEOUT
            wait = None if deadline is None else deadline - now
            if self.spec.memory_limit_mb is not None:
                wait = MEMORY_CHECK_S if wait is None else min(wait, MEMORY_CHECK_S)
            readable, _, _ = select.select([self._fd], [], [], wait)
            if readable and not self._read():
                return Ended.EXITED
            if self._over_memory():
                self.kill(Cause.MEMORY_LIMIT)
                return Ended.MEMORY
        return self._pending.pop(0)

    def _read(self) -> bool:
        """Read what is there; False at end of file (the child is gone)."""
        chunk = os.read(self._fd, 1 << 16)
        if not chunk:
            return False
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            message = self.spec.codec.decode(line)
            if message is not None:
                self._pending.append(message)
        return True

    def _over_memory(self) -> bool:
        limit = self.spec.memory_limit_mb
        if limit is None or self._proc is None:
            return False
        try:
            rss = psutil.Process(self._proc.pid).memory_info().rss
        except psutil.Error:
            return False
        return bool(rss > limit * 2**20)

    # ----- the end -----
    def ending(self) -> Ending:
        """Wait for the child to exit (killing it if it lingers) and say how it ended."""
        proc = self._proc
        assert proc is not None, "child not started"
        try:
            code = proc.wait(timeout=EXIT_GRACE_S)
        except subprocess.TimeoutExpired:  # closed its pipe but does not exit: a hang in shutdown
            self.kill(Cause.TIMEOUT)
            code = proc.wait()
        detail = describe_exit(code)
        if self.killed_for is not None:
            cause = self.killed_for
        elif code >= 0:
            cause = Cause.EXIT
        elif code == -signal.SIGKILL and self._kernel_oom_killed():
            cause = Cause.KERNEL_OOM
        else:
            cause = Cause.SIGNAL
        lines = self._stderr_lines()
        tail = " | ".join(lines[-3:])[-STDERR_TAIL:]
        return Ending(cause, code, detail, tail, lines[-1] if lines else "")

    def _kernel_oom_killed(self) -> bool:
        before, after = self._oom_kills_at_start, kernel_oom_kills()
        return before is not None and after is not None and after > before

    def _stderr_lines(self) -> list[str]:
        try:
            text = (self.directory / "stderr.txt").read_text(errors="replace")
        except (OSError, AssertionError):
            return []
        return [line.strip() for line in text.splitlines() if line.strip()]


def describe_exit(code: int) -> str:
    """``exit code 3`` or ``killed by SIGSEGV``, from a ``Popen.returncode``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def kernel_oom_kills() -> int | None:
    """How many processes the kernel's out-of-memory killer has killed since boot (None where unknown).

    The counter is machine-wide: it says that the kernel killed *some* process while our child lived, which,
    with the child dead of SIGKILL at the same time, is the best cheap evidence there is short of reading the
    kernel log (often not readable without privileges).
    """
    try:
        for line in VMSTAT.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def ask(spec: ChildSpec, job: Mapping[str, Any], timeout_s: float) -> Message | Ending:
    """Run a child that gives one answer: its first message, or how it ended without one (timeout, crash).

    The calibration, bandwidth and GPU-probe children all work this way; the child is gone when this returns.
    """
    with Child(spec, job) as child:
        message = child.receive(time.monotonic() + timeout_s)
        return child.ending() if isinstance(message, Ended) else message
