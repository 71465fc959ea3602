"""How much the machine moved between two runs, from the control kernels measured in every round.

The controls' code is fixed (:mod:`dlbench.runner.drift`), so a change of their speed is the machine's. When
either kernel moved beyond ``control_tolerance`` a warning says so, and every timed case is marked with
the move of the kernel that fits it.

``--normalize control`` multiplies each case's current times by ``speed(current) / speed(baseline)`` of
the kernel that fits it, i.e. it removes the machine's speed change, assuming the case moved with that
kernel. Which kernel fits is decided by the roofline model (Williams, Waterman and Patterson, CACM 2009):
a case whose arithmetic intensity (FLOPs of one pass per byte of its working set) lies below the
machine's ridge point (matmul GFLOP/s / copy GB/s of the baseline's controls, in FLOP per byte) is
limited by memory bandwidth and follows the copy; above it, by the core, and follows the matmul. The
working set is the case's RSS rise (its weights, activations and gradients): every pass touches it about
once, so FLOPs / rise is the intensity the roofline needs; a case without a memory reading, or runs
without the memory kernel (before it existed), use the matmul. This is sound on the same CPU when the
machine's speed changed uniformly (frequency scaling, a thermal state, a uniformly slower VM, a
neighbour streaming memory); it is not for cases limited by the framework's dispatch overhead or I/O,
which neither kernel tracks, nor across CPU models.
"""

from __future__ import annotations

import msgspec

from dlbench.errors import DlbenchError
from dlbench.record.results import CaseResult
from dlbench.record.store import RunRecord
from dlbench.runner.drift import COMPUTE, MEMORY, control_level
from dlbench.workloads.registry import pass_flops

KERNEL_NAMES = {COMPUTE: "matmul", MEMORY: "memory copy"}


def control_shift(baseline: RunRecord, current: RunRecord, metric: str = COMPUTE) -> float | None:
    """Relative change of one control kernel's speed, current vs baseline (-0.05: the machine got 5%
    slower); None when either run lacks it."""
    base, cur = control_level(baseline, metric), control_level(current, metric)
    if base is None or cur is None:
        return None
    return cur / base - 1.0


def ridge_point(record: RunRecord) -> float | None:
    """The roofline's ridge point of the run's machine at one thread, in FLOP per byte (None without both
    control kernels)."""
    gflops, gbps = control_level(record, COMPUTE), control_level(record, MEMORY)
    return gflops / gbps if gflops is not None and gbps is not None else None


def fitting_kernel(result: CaseResult, ridge: float | None) -> str:
    """COMPUTE or MEMORY: the control kernel whose speed the case follows (module docstring)."""
    working_set = result.memory.rise
    if ridge is None or not working_set:
        return COMPUTE
    case = result.case
    intensity = pass_flops(case.workload, case.phase, case.pass_, case.batch_size, result.macs) / working_set
    return MEMORY if intensity < ridge else COMPUTE


def control_warning(shift: float, tolerance: float, metric: str = COMPUTE) -> str | None:
    if abs(shift) <= tolerance:
        return None
    direction = "slower" if shift < 0 else "faster"
    return (f"the machine changed between the runs: the {KERNEL_NAMES[metric]} control kernel ran"
            f" {abs(shift):.1%} {direction} in the current run (tolerance {tolerance:.0%}); timing verdicts"
            " may be the machine's, not the code's")


def case_mark(shift: float, metric: str = COMPUTE) -> str:
    kernel = "" if metric == COMPUTE else f" {KERNEL_NAMES[metric]}"
    return f"measured on a changed machine (control{kernel} {shift * 100:+.1f}%)"


def normalized(baseline: RunRecord, current: RunRecord, shifts: dict[str, float | None]) -> RunRecord:
    """The current run with each case's times scaled by the speed ratio of its fitting kernel (module
    docstring)."""
    if shifts.get(COMPUTE) is None:
        raise DlbenchError("--normalize control needs the control in both runs (dlbench run --repeat 2 or "
                           "more measures it in every round)")
    ridge = ridge_point(baseline) if shifts.get(MEMORY) is not None else None

    def scaled(result: CaseResult) -> CaseResult:
        shift = shifts[fitting_kernel(result, ridge)]
        factor = 1.0 + (shift or 0.0)
        return msgspec.structs.replace(result, samples_ms=tuple(x * factor for x in result.samples_ms))

    return msgspec.structs.replace(current, results=[scaled(r) for r in current.results])
