"""A memory-bound kernel: the copy of a large array (STREAM's "Copy"), in GB/s, for the drift control.

A matrix multiply that fits the caches tracks the core's speed (frequency, a thermal state) but not the
memory system; a copy of arrays far larger than the caches tracks the memory bandwidth a case gets
(another process streaming memory on a neighbouring core, a different memory configuration), which the
matmul does not see. :mod:`dlbench.runner.drift` measures both in every round.

Measured like the calibration kernel (:mod:`dlbench.measure.calibrate`): in its own child process on the process
kit, pinned like a one-thread case, timed with the project's measuring loop. Bytes counted as STREAM
counts them: one read and one write of the array per copy. This module is also the child's job module,
so it imports nothing heavy at module level.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from dlbench.errors import DlbenchError
from dlbench.process.child import Cause, ChildSpec, Ending, ask
from dlbench.process.messages import Channel, Codec, Message
from dlbench.process.placement import place

DEFAULT_MIB = 64  # per array: far beyond the last-level cache of any CPU it will run on
DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Streamed(Message):
    """The child's one message: the bandwidth entry."""

    kind = "streamed"
    entry: dict[str, Any]


CODEC = Codec(Streamed)


def measure_bandwidth(measure: dict[str, Any], mib: int = DEFAULT_MIB, threads: int = 1,
                      timeout_s: float = DEFAULT_TIMEOUT_S, python: str = sys.executable) -> dict[str, Any]:
    """The copy bandwidth on ``threads`` pinned cores: ``{"gbps": median GB/s, "gbps_best", "median_ms",
    "n_samples", "mib", "cores", "cpu_per_wall"}``."""
    try:
        placement = place(threads)
    except ValueError as exc:
        raise DlbenchError(f"cannot measure the memory bandwidth on {threads} thread(s): {exc}") from None
    spec = ChildSpec(module=__name__, placement=placement, codec=CODEC, python=python)
    answer = ask(spec, {"mib": mib, "measure": measure}, timeout_s)
    if isinstance(answer, Streamed):
        return answer.entry
    if not isinstance(answer, Ending):
        raise DlbenchError(f"the memory-bandwidth kernel sent an unexpected {type(answer).__name__}")
    ending = answer
    if ending.cause is Cause.TIMEOUT:
        raise DlbenchError(f"the memory-bandwidth kernel took longer than {timeout_s:g} s")
    raise DlbenchError(f"the memory-bandwidth kernel failed: {ending.last_line or ending.detail}")


def child_main(job: dict[str, Any], channel: Channel) -> None:
    """Entry point in the child (called by the kit's boot, already pinned): measure and report."""
    channel.send(Streamed(copy_bandwidth(int(job["mib"]), dict(job["measure"]))))


def copy_bandwidth(mib: int, config: dict[str, Any]) -> dict[str, Any]:
    """In the child: time ``np.copyto`` of a ``mib`` MiB float64 array into another."""
    import numpy as np

    from dlbench.measure.timing import MeasureConfig, measure
    from dlbench.statistics.samples import summarize

    source = np.arange(mib * 2**20 // 8, dtype=np.float64)
    target = np.empty_like(source)
    moved = 2.0 * source.nbytes  # read once, written once

    def copy() -> None:
        np.copyto(target, source)  # synchronous: done when it returns

    timing = measure(lambda: copy, lambda _: None, MeasureConfig(**config))
    summary = summarize(timing.samples_ms)

    def gbps(ms: float) -> float:
        return float(f"{moved / (ms / 1e3) / 1e9:.6g}")

    return {"gbps": gbps(summary.median), "gbps_best": gbps(summary.min),
            "median_ms": float(f"{summary.median:.6g}"), "n_samples": summary.n, "mib": mib,
            "cores": sorted(os.sched_getaffinity(0)), "cpu_per_wall": round(timing.cpu_per_wall, 3)}
