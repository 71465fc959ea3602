"""A job module for the process-kit tests: ``child_main`` does what the job says, as a real job would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from dlbench.process.messages import Channel, Codec, Message


@dataclass(frozen=True)
class Report(Message):
    """What the child saw of its own placement."""

    kind = "report"
    affinity: list[int]
    omp_threads: str
    extra: str


CODEC = Codec(Report)


def child_main(job: dict[str, Any], channel: Channel) -> None:
    action = job["action"]
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
