"""How much the machine moved between two runs, from the control measured in every round.

The control's code is fixed (:mod:`dlbench.control`), so a change of its speed is the machine's. Above
``control_tolerance`` every timed case of the comparison is marked as measured on a changed machine.
``--normalize control`` multiplies the current run's times by ``control(current) / control(baseline)``
(the control's GFLOP/s), i.e. it removes the machine's speed change, assuming the cases moved with the
control. That is sound for compute-bound cases on the same CPU whose speed changed uniformly (frequency
scaling, a thermal state, a uniformly slower VM); it is not for cases limited by memory bandwidth, I/O
or the framework's dispatch overhead, which a matmul does not track, nor across CPU models.
"""

from __future__ import annotations

from dataclasses import replace

from dlbench.control import control_level
from dlbench.errors import DlbenchError
from dlbench.store import RunRecord


def control_shift(baseline: RunRecord, current: RunRecord) -> float | None:
    """Relative change of the control's speed, current vs baseline (-0.05: the machine got 5% slower);
    None when either run measured no control."""
    base, cur = control_level(baseline), control_level(current)
    if base is None or cur is None:
        return None
    return cur / base - 1.0


def control_warning(shift: float, tolerance: float) -> str | None:
    if abs(shift) <= tolerance:
        return None
    direction = "slower" if shift < 0 else "faster"
    return (f"the machine changed between the runs: the control kernel ran {abs(shift):.1%} {direction} in the"
            f" current run (tolerance {tolerance:.0%}); timing verdicts may be the machine's, not the code's")


def case_mark(shift: float) -> str:
    return f"measured on a changed machine (control {shift * 100:+.1f}%)"


def normalized(current: RunRecord, shift: float | None) -> RunRecord:
    """The current run with its times scaled by the control's speed ratio (see the module docstring)."""
    if shift is None:
        raise DlbenchError("--normalize control needs the control in both runs (dlbench run --repeat 2 or "
                           "more measures it in every round)")
    factor = 1.0 + shift
    results = [replace(r, samples_ms=tuple(x * factor for x in r.samples_ms)) for r in current.results]
    return replace(current, results=results)
