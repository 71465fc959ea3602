"""A job module for the process-kit tests: ``child_main`` does what the job says, as a real job would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from dlbench.process.gate import Gate, thread_affinities
from dlbench.process.messages import Channel, Codec, Message


@dataclass(frozen=True)
class Report(Message):
    """What the child saw of its own placement."""

    kind = "report"
    affinity: list[int]
    omp_threads: str
    extra: str


@dataclass(frozen=True)
class Threads(Message):
    """The CPU mask of every thread of the child, as sorted core lists."""

    kind = "threads"
    masks: list[list[int]]


CODEC = Codec(Report, Threads)


def report_threads(channel: Channel) -> None:
    channel.send(Threads(sorted(sorted(mask) for mask in thread_affinities().values())))


def gated(channel: Channel) -> None:
    """A gated child: a thread started before the pin (as an import may start one), then the pin, then the
    gate, and a report on each side of it."""
    import threading

    gate = Gate.from_environment()
    assert gate is not None, "started without a gate"
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
    report_threads(channel)  # unpinned: the boot left every core
    gate.pin()
    report_threads(channel)
    gate.wait()
    channel.send(Report(sorted(os.sched_getaffinity(0)), "", "through the gate"))


def child_main(job: dict[str, Any], channel: Channel) -> None:
    action = job["action"]
    if action == "gated":
        gated(channel)
        return
    channel.send(Report(sorted(os.sched_getaffinity(0)), os.environ.get("OMP_NUM_THREADS", ""),
                        os.environ.get("KIT_TEST_EXTRA", "")))
    if action == "report":
        return
    if action == "fail":
        print("something went wrong inside", file=sys.stderr)
        sys.exit(3)
    if action == "abort":
        os.abort()
    if action == "hang":  # with a grandchild, which the group kill must take along
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        channel.send(Report([grandchild.pid], "", "grandchild"))
        time.sleep(120)
    if action == "late":  # a message after a pause
        time.sleep(float(job["pause_s"]))
        channel.send(Report([], "", "late"))
        return
    if action == "allocate":
        hoard = []
        while True:
            hoard.append(bytearray(32 * 2**20))
            time.sleep(0.01)
    raise ValueError(f"unknown action {action}")
