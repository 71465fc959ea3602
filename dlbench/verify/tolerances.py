"""The float32 tolerance of each workload, and why it is what it is.

All tolerances bound the normwise relative error ``max|a - b| / max(max|a|, max|b|)`` (see
:mod:`dlbench.verify.compare`) of float32 framework results against each other and against the float64
NumPy reference. float32 has a unit roundoff of 6e-8; a dot product of length k accumulates rounding of
roughly sqrt(k) to k units, and each layer adds its own. The budgets below sit one to two orders of
magnitude above the errors measured on the project machine (``dlbench verify --format json`` prints them),
and still two to three orders below what a layout bug causes (swapped LSTM gates, an unpermuted flatten:
relative errors of 1e-1 and more).

Gradients get a looser budget than outputs for a structural reason: where a ReLU input or two max-pool
candidates lie within float32 rounding of each other, float32 and float64 can route one element's gradient
differently. The forward value barely changes, but the kernel gradient then differs by that one
contribution. Deep ReLU networks with large fan-in (AlexNet) are most exposed.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlbench.errors import DlbenchError


@dataclass(frozen=True)
class Tolerance:
    """Allowed normwise relative error per tensor family, with the reason for the budget."""

    output: float
    loss: float
    gradient: float
    why: str

    def for_family(self, family: str) -> float:
        return {"output": self.output, "loss": self.loss, "gradient": self.gradient}[family]


TOLERANCES: dict[str, Tolerance] = {
    "lenet": Tolerance(
        output=1e-5, loss=1e-5, gradient=1e-4,
        why="two small tanh convolutions and a 800->500 ReLU layer: float32 rounding only",
    ),
    "alexnet": Tolerance(
        output=1e-4, loss=1e-5, gradient=2e-3,
        why="fan-in up to 9216 and 8 ReLU layers; ReLU/max-pool routing flips near ties move single gradient terms",
    ),
    "autoencoder": Tolerance(
        output=1e-5, loss=1e-5, gradient=1e-4,
        why="dense sigmoid layers of at most 784 inputs; smooth, so float32 rounding only",
    ),
    "lstm": Tolerance(
        output=1e-4, loss=1e-5, gradient=1e-4,
        why="100 recurrent steps compound rounding in the state; smooth gates",
    ),
}


def tolerance_for(workload: str) -> Tolerance:
    try:
        return TOLERANCES[workload]
    except KeyError:
        raise DlbenchError(f"no verification tolerance is defined for workload {workload!r}") from None
