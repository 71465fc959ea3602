"""The entry point of every child: ``python -m dlbench.process.boot ENVELOPE.json FD``.

Order is the point of this module. First ask Linux to kill this child when its parent dies (no orphan keeps a
core busy after ``kill -9 dlbench``), then pin to the assigned cores, and only then import the job's module
and call its ``child_main(job, channel)``: JAX honours only an affinity set before its backend starts, and a
thread created before the pin keeps the old mask. The thread variables are already in the environment (the
parent set them). Nothing heavy is imported before the pin: this module and its package load only the
standard library.

The child leaves with ``os._exit``: a framework's interpreter shutdown is slow and can crash or hang.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from dlbench.process.messages import Channel

PR_SET_PDEATHSIG = 1
ENTRY = "child_main"  # the function a job module provides: child_main(job: dict, channel: Channel) -> None


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies. Best effort: other systems lack ``prctl``.

    Linux ties the signal to the parent *thread* that started the child: a child started from a short-lived
    thread dies when that thread ends, so start children from a thread that lives as long as they should.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def main(argv: list[str]) -> NoReturn:
    die_with_parent()
    code = 0
    try:
        envelope = json.loads(Path(argv[0]).read_text())
        cores = set(envelope["cores"])
        if cores:
            os.sched_setaffinity(0, cores)  # before any import of the job: see the module docstring
        channel = Channel(int(argv[1]))
        module = importlib.import_module(envelope["module"])
        getattr(module, ENTRY)(envelope["job"], channel)
    except SystemExit as exc:  # sys.exit in the job: its code, as for any program
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:  # the parent shows the tail of stderr as the reason
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
