"""Starting children ahead of their turn: import in parallel while nothing is measured, then wait at a gate.

Why: a run measures one worker at a time, and each worker first spends seconds importing its framework on
one core while the others idle. Those seconds are the largest part of the harness's own cost. Several
workers can import at once without disturbing any measurement if they all do it while no case runs, and
then wait, idle, until the parent opens their gate; the imports then cost about their sum divided by the
cores instead of their sum.

How: a *gated* child (``ChildSpec.gate``) is started with its cores in :data:`PIN_ENV` instead of being
pinned by the boot, so that its import may use every core. Once imported, before its framework starts any
runtime (thread pools, JAX's backend), the job calls :meth:`Gate.pin`, which pins *every* thread of the
process to the child's cores: a thread that an import started keeps the mask it was created with, so
pinning the main thread alone would not do. The job then configures its framework (which reads the
affinity), warms it up, tells the parent it is waiting and blocks in :meth:`Gate.wait` until the parent
writes one byte into the gate pipe (:meth:`dlbench.process.child.Child.open_gate`). A child waiting at its
gate runs nothing: it sleeps in ``read``.
"""

from __future__ import annotations

import os
from pathlib import Path

GATE_ENV = "DLBENCH_GATE_FD"  # the file descriptor of a gated child's gate pipe (read end)
PIN_ENV = "DLBENCH_PIN_CORES"  # the cores a gated child pins itself to once imported, e.g. "0,1"
TASKS = Path("/proc/self/task")


def pin_every_thread(cores: set[int]) -> None:
    """Pin every thread of this process to ``cores``; threads started later inherit the mask."""
    os.sched_setaffinity(0, cores)
    try:
        threads = [int(entry.name) for entry in TASKS.iterdir()]
    except OSError:  # no /proc: the main thread's mask is all we can set
        return
    for tid in threads:
        try:
            os.sched_setaffinity(tid, cores)
        except (ProcessLookupError, PermissionError):  # the thread ended meanwhile
            continue


def thread_affinities() -> dict[int, frozenset[int]]:
    """The CPU mask of every thread of this process (the tests check that pinning reached all of them)."""
    masks: dict[int, frozenset[int]] = {}
    for entry in TASKS.iterdir():
        try:
            masks[int(entry.name)] = frozenset(os.sched_getaffinity(int(entry.name)))
        except (ProcessLookupError, PermissionError):
            continue
    return masks


class Gate:
    """The gated child's side: pin once imported, then wait for the parent's word to go on."""

    def __init__(self, fd: int, cores: set[int]) -> None:
        self.fd = fd
        self.cores = cores

    @classmethod
    def from_environment(cls) -> Gate | None:
        """The gate this child was started with, or None for a child pinned by the boot as usual."""
        fd = os.environ.get(GATE_ENV, "")
        if not fd:
            return None
        cores = {int(core) for core in os.environ.get(PIN_ENV, "").split(",") if core}
        return cls(int(fd), cores)

    def pin(self) -> None:
        """Pin every thread to this child's cores (nothing to do for a child given no cores)."""
        if self.cores:
            pin_every_thread(self.cores)

    def wait(self) -> None:
        """Block until the parent opens the gate. A parent that is gone ends the child: nobody is left to
        report to."""
        if not os.read(self.fd, 1):
            os._exit(1)
