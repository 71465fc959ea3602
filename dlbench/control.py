"""A fixed control measured in every round, to see whether the machine itself moved.

The control is the calibration kernel (float32 matrix multiply, :mod:`dlbench.calibrate`) at one thread,
in its own child pinned like a one-thread case, small and short so that a round pays a few seconds for
it. Its code never changes, so when its speed differs between two runs the machine differed: another
CPU frequency, thermal state, or a neighbour. :mod:`dlbench.regress.control` turns that into warnings,
per-case marks and, on request, a normalisation.
"""

from __future__ import annotations

from statistics import median
from typing import Any

from dlbench.calibrate import calibrate
from dlbench.store import RunRecord, now_iso

CONTROL_SIZE = 512  # 0.27 GFLOP per product: a compute-bound kernel that fits the caches
CONTROL_MEASURE = {"warmup_s": 0.1, "min_block_s": 0.02, "min_samples": 5, "max_samples": 30,
                   "min_time_s": 0.3, "max_time_s": 1.5, "target_rel_ci": 0.02}


def measure_control(round_number: int) -> dict[str, Any]:
    """One control reading for a round: the matmul's GFLOP/s (median) at one pinned thread."""
    entry = calibrate([1], size=CONTROL_SIZE, measure=CONTROL_MEASURE)[1]
    return {"round": round_number, "kernel": f"matmul {CONTROL_SIZE} float32, 1 thread",
            "gflops": entry["gflops"], "at": now_iso()}


def control_readings(record: RunRecord) -> list[float]:
    """The control's GFLOP/s of every round of a run (empty when the run measured no control)."""
    entries = record.environment.get("control", [])
    if not isinstance(entries, list):
        return []
    return [float(e["gflops"]) for e in entries
            if isinstance(e, dict) and isinstance(e.get("gflops"), int | float) and e["gflops"] > 0]


def control_level(record: RunRecord) -> float | None:
    """The median control speed of a run, or None without a control."""
    readings = control_readings(record)
    return median(readings) if readings else None
