"""A fixed control measured in every round, to see whether the machine itself moved.

Two kernels, each at one thread in its own child pinned like a one-thread case, small and short so that a
round pays a few seconds for them: the calibration kernel (float32 matrix multiply that fits the caches,
:mod:`dlbench.measure.calibrate`), which tracks the core's speed, and a copy of arrays far larger than the caches
(:mod:`dlbench.measure.bandwidth`), which tracks the memory bandwidth. Their code never changes, so when their
speed differs between two runs the machine differed: another CPU frequency, thermal state, memory
configuration, or a neighbour. :mod:`dlbench.regress.normalize` turns that into warnings, per-case marks
and, on request, a normalisation by the kernel that fits each case.
"""

from __future__ import annotations

from statistics import median

from dlbench.measure.bandwidth import measure_bandwidth
from dlbench.measure.calibrate import calibrate
from dlbench.record.schema import ControlReading
from dlbench.record.store import RunRecord, now_iso

CONTROL_SIZE = 512  # 0.27 GFLOP per product: a compute-bound kernel that fits the caches
CONTROL_MIB = 64  # per array of the memory kernel: far beyond the caches
COMPUTE = "gflops"  # the matmul's reading
MEMORY = "gbps"  # the copy's reading
CONTROL_MEASURE = {"warmup_s": 0.1, "min_block_s": 0.02, "min_samples": 5, "max_samples": 30,
                   "min_time_s": 0.3, "max_time_s": 1.5, "target_rel_ci": 0.02}


def measure_control(round_number: int) -> ControlReading:
    """One control reading for a round: the matmul's GFLOP/s and the copy's GB/s (medians) at one pinned
    thread."""
    entry = calibrate([1], size=CONTROL_SIZE, measure=CONTROL_MEASURE)[1]
    stream = measure_bandwidth(CONTROL_MEASURE, mib=CONTROL_MIB)
    return ControlReading(round=round_number, kernel=f"matmul {CONTROL_SIZE} float32, 1 thread",
                          gflops=entry["gflops"], memory_kernel=f"copy {CONTROL_MIB} MiB float64, 1 thread",
                          gbps=stream["gbps"], at=now_iso())


def control_readings(record: RunRecord, metric: str = COMPUTE) -> list[float]:
    """One kernel's readings (COMPUTE: GFLOP/s, MEMORY: GB/s) of every round of a run (empty when the run
    measured no control, or, for MEMORY, was taken before the memory kernel existed)."""
    values = (getattr(reading, metric) for reading in record.environment.control)
    return [float(v) for v in values if v is not None]


def control_level(record: RunRecord, metric: str = COMPUTE) -> float | None:
    """The median reading of one control kernel in a run, or None without it."""
    readings = control_readings(record, metric)
    return median(readings) if readings else None
