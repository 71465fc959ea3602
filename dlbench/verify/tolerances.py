"""The float32 tolerance of each workload, and why it is what it is.

Each tolerance bounds the normwise relative error ``max|a - b| / max(max|a|, max|b|)`` (see
:mod:`dlbench.verify.compare`) of float32 framework results against the float64 NumPy reference and against
each other. float32 has a unit roundoff of 6e-8; a dot product of length k accumulates a few to sqrt(k)
units, and each layer adds its own. Measured on the project machine (torch 2.13, TensorFlow 2.21, JAX 0.10;
seeds 0-3 at batch 2 and seed 5 at batch 8, every variant; ``dlbench verify --format json`` prints the
numbers), the largest errors are: outputs 9e-7 (AlexNet 2.6e-6), losses 2.2e-7, gradients 1.0e-6 (AlexNet
2.7e-6), once the float32 allowance below is taken into account. The budgets sit 10-40x above that, and
still far below what a layout bug causes (an unpermuted flatten: 1.5 of the scale; LSTM gates i and f
swapped: 9e-2 at the flat canonical initialisation).

Those numbers are for the canonical zero biases (``--biases canonical``). The default seeded random biases
(:mod:`dlbench.verify.biases`; the same seeds and batches, every variant but torch ``compile``) change none of
the budgets: outputs 9.5e-7 (AlexNet 2.0e-6), losses 1.9e-7, gradients 1.4e-6 (AlexNet 3.2e-6), and nothing
left beyond the budgets once the allowance is subtracted. The LSTM's bias gradient stays a near-cancelling
sum on some seeds (up to 6.4e-5 of its scale, seed 3) and is covered by its measured float32 allowance, as
are AlexNet's near-ties (up to 1.5e-2 on one channel, seed 3).

The transformer (seed 0, batch 2 with two padded sequences, random biases, all eleven variants of the three
frameworks) measured outputs 6.4e-7, losses 3.7e-7, gradients 3.2e-6 against the reference and 5.6e-6 between
frameworks. Its attention key-bias gradients are exactly zero in exact arithmetic (the softmax over the keys
ignores a shift that is the same for every key of a query), so what a float32 framework returns there is pure
rounding (up to 7e-9) at a relative error of 1 against the float64 reference's 1e-17; the reference's float32
run measures that rounding (2e-8 to 1e-7 allowed) and judges it like any near-cancelling sum.

Two effects are not rounding of that kind; the reference measures them for the input at hand
(``Reference.allowance``, see :mod:`dlbench.verify.reference` and :mod:`dlbench.verify.ties`) instead of
loosening these numbers for everyone:

* near-cancelling sums, whose float32 rounding is a large fraction of their own small scale (the LSTM's
  bias gradients at the flat canonical initialisation, batch 2: up to 3e-4 of their scale). The reference
  runs the same computation in float32 too and allows 10x that tensor's float32 deviation;
* near-ties of ReLU and max-pool decisions, where a correct float32 framework may route a gradient element
  differently from float64 (AlexNet seed 0: 1.1e-2 on one output channel of the conv1 kernel gradient,
  seed 3: 3.1e-2 on conv2). The reference computes the exact effect of each such decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlbench.cases.precision import get_precision
from dlbench.errors import DlbenchError
from dlbench.workloads import get_plugin
from dlbench.workloads.plugin import DEFAULT_TOLERANCE

FLOAT32_BITS = 24


@dataclass(frozen=True)
class Tolerance:
    """Allowed normwise relative error per tensor family, with the reason for the budget."""

    output: float
    loss: float
    gradient: float
    why: str


TOLERANCES: dict[str, Tolerance] = {
    "lenet": Tolerance(
        output=1e-5,
        loss=1e-5,
        gradient=3e-5,
        why="small tanh convolutions (fan-in <= 800): measured <= 1e-6",
    ),
    "alexnet": Tolerance(
        output=3e-5,
        loss=1e-5,
        gradient=5e-5,
        why="fan-in up to 9216 through 8 layers: measured <= 3e-6",
    ),
    "autoencoder": Tolerance(
        output=1e-5,
        loss=1e-5,
        gradient=3e-5,
        why="dense sigmoid layers of fan-in <= 784: measured <= 1e-6",
    ),
    "lstm": Tolerance(
        output=1e-5,
        loss=1e-5,
        gradient=3e-5,
        why="100 recurrent steps: measured <= 8e-7; its near-cancelling bias gradients use the allowance",
    ),
    "transformer": Tolerance(
        output=1e-5,
        loss=1e-5,
        gradient=3e-5,
        why="4 pre-LN layers, fan-in <= 1024, softmax over 128 keys: measured <= 3.2e-6 (pairs 5.6e-6); the key-bias "
            "gradients, zero in exact arithmetic, are float32 rounding and use the allowance",
    ),
}


# Low precisions: budgets in units of the precision's unit roundoff u = 2**-significand_bits (bf16: 3.9e-3,
# fp16 and TF32: 4.9e-4). With float32 accumulation a layer's result carries the rounding of its two operands
# and of itself, a few u normwise, and the layers' errors add up along the network, backwards once more for
# the gradients. See LOW_PRECISION_NOTE for the measured errors these budgets sit above.
LOW_PRECISION_UNITS: dict[str, float] = {"output": 8.0, "loss": 2.0, "gradient": 16.0}


def plugin_tolerance(workload: str) -> Tolerance:
    """The budget a workload plugin declares (``WorkloadPlugin.tolerance``), or the default one."""
    try:
        declared = get_plugin(workload).tolerance
    except DlbenchError:
        raise DlbenchError(f"no verification tolerance is defined for workload {workload!r}") from None
    output, loss, gradient = declared or DEFAULT_TOLERANCE
    return Tolerance(output=output, loss=loss, gradient=gradient,
                     why="declared by its workload plugin" if declared else "the default of a workload plugin")


def tolerance_for(workload: str, precision: str = "float32") -> Tolerance:
    """The workload's float32 budget, or for a low precision its budget derived from the unit roundoff."""
    layer_of = workload.removeprefix("conv:").partition(".")[0] if workload.startswith("conv:") else ""
    base = TOLERANCES.get(layer_of or workload)  # a layer benchmark: its network's budget bounds it
    if base is None:
        base = plugin_tolerance(layer_of or workload)
    recipe = get_precision(precision)
    if recipe.significand_bits >= FLOAT32_BITS:
        return base
    u = recipe.unit_roundoff
    return Tolerance(
        output=max(base.output, LOW_PRECISION_UNITS["output"] * u),
        loss=max(base.loss, LOW_PRECISION_UNITS["loss"] * u),
        gradient=max(base.gradient, LOW_PRECISION_UNITS["gradient"] * u),
        why=f"{precision}: unit roundoff {u:.1e}, budgets of "
            + "/".join(f"{v:g}" for v in LOW_PRECISION_UNITS.values()) + " u (output/loss/gradient)",
    )
