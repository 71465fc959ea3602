"""The weights ``dlbench verify`` feeds to every implementation: canonical, with optionally non-zero biases.

Why: the canonical initial weights (:mod:`dlbench.workloads.weights`) have all-zero biases. An adapter that
loads a bias into the wrong place (the LSTM's four gate blocks permuted, a bias reversed or given to another
layer of the same width, PyTorch's two LSTM biases both set, a bias never copied) then computes exactly the
canonical function, because any rearrangement, doubling or omission of zeros is zeros. When its gradients come
back through the framework's own, correctly laid out, parameter slots, every number verify compares is right:
it cannot see the mistake, and the first training step makes it real. (Had the gradient been put back with
the inverse of the wrong load, the bias gradient itself would be permuted, and that is caught at zero biases
too.)

Two modes:

* ``canonical`` - exactly the canonical initial weights, the starting point of every timed run.
* ``random`` (the default) - the same tensors, except that every parameter whose canonical initialiser is
  ``zeros`` (every bias, including the autoencoder's decoder biases, the LSTM's ``[4H]`` bias and the
  transformer's layer-norm betas) is drawn from its own seeded stream, uniform in ``+-1/sqrt(fan_in)``, and
  every ``ones`` parameter (the layer-norm gammas) is 1 plus such a draw. Every other tensor is the canonical
  one bit for bit, and every implementation and the reference receive the very same values.

Why ``random`` is the default: it is strictly stronger for what verify exists to catch. An adapter that puts
each canonical tensor where it belongs computes the canonical function for *any* bias values, so it passes in
both modes; one that passes with random biases has shown that it loads and maps back the biases correctly,
which the canonical weights cannot show. ``canonical`` stays available to check the exact weights of the
timed runs.

Why ``1/sqrt(fan_in)`` (``fan_in``: the number of products summed into the pre-activation the bias is added
to; the bias initialiser of PyTorch's layers): a bias the size of one weight-times-input term. Misplaced, it
moves the results far beyond the tolerances (seed 0, batch 2: the LSTM's i and f bias blocks exchanged, the
hardest case, output 8e-4 = 80x its tolerance and every gradient 30-400x; AlexNet's conv2 bias reversed,
output 0.11 = 3800x), while the network stays in the regime of its canonical initialisation: AlexNet keeps
its fraction of dead ReLU channels (3-9 % per convolution; biases of +-0.5 would kill a quarter of them, and
with them the coverage of their kernels' gradients) and no sigmoid saturates.
"""

from __future__ import annotations

from math import prod, sqrt

import numpy as np

from dlbench.errors import DlbenchError
from dlbench.workloads import Workload, get_workload, initial_weights
from dlbench.workloads.data import derive_seed

CANONICAL = "canonical"
RANDOM = "random"
BIAS_MODES: tuple[str, ...] = (RANDOM, CANONICAL)
DEFAULT_BIASES = RANDOM


def check_bias_mode(biases: str) -> str:
    if biases not in BIAS_MODES:
        raise DlbenchError(f"unknown bias mode {biases!r}; choose one of: {', '.join(BIAS_MODES)}")
    return biases


def bias_fan_in(workload: Workload, name: str) -> int:
    """How many products are summed into each pre-activation that the zero-initialised ``name`` is added to.

    ``<layer>.bias`` belongs to ``<layer>.kernel`` (all axes but the last are summed over: the receptive
    field counts for convolutions); ``dec<k>.bias`` to the tied decoder, which applies ``enc<k>.kernel``
    transposed; ``lstm.bias`` to both LSTM kernels. A layer norm's ``beta`` and ``gamma`` act on values
    normalised over its width, so the width stands in for the fan-in (a shift or a scale change of
    1/sqrt(width) against unit-variance values, 0.06 for the transformer's 256). Any other zero-initialised
    parameter is an error: a new workload must say where its biases go rather than get a silently wrong
    scale."""
    layer, _, kind = name.rpartition(".")
    names = {p.name for p in workload.params}
    if kind in ("beta", "gamma") and f"{layer}.gamma" in names and f"{layer}.beta" in names:
        return workload.param(name).shape[-1]
    if name == "lstm.bias":
        return workload.param("lstm.input_kernel").shape[0] + workload.param("lstm.recurrent_kernel").shape[0]
    if kind == "bias" and layer.startswith("dec") and f"enc{layer[3:]}.kernel" in names:
        return workload.param(f"enc{layer[3:]}.kernel").shape[-1]
    if kind == "bias" and f"{layer}.kernel" in names:
        return prod(workload.param(f"{layer}.kernel").shape[:-1])
    raise ValueError(f"{workload.name}: no rule for the fan-in of zero-initialised parameter {name!r}")


def random_bias(workload: Workload, name: str, seed: int = 0) -> np.ndarray:
    """The seeded value of one zero-initialised parameter, uniform in ``+-1/sqrt(fan_in)`` (1 plus that for a
    one-initialised layer-norm gamma).

    Its stream depends only on (workload, name, seed): the same everywhere, and independent of the other
    parameters and of the canonical weights' streams (which stay untouched)."""
    spec = workload.param(name)
    bound = np.float32(1.0 / sqrt(bias_fan_in(workload, name)))
    rng = np.random.default_rng(derive_seed("verify-bias", workload.name, name, seed))
    values = rng.random(spec.shape, dtype=np.float32)
    drawn = (values * np.float32(2.0) - np.float32(1.0)) * bound
    return drawn + np.float32(1.0) if spec.init == "ones" else drawn


def verification_weights(workload: str, seed: int = 0, biases: str = DEFAULT_BIASES) -> dict[str, np.ndarray]:
    """Every parameter of ``workload`` by canonical name, as verify feeds it to every implementation: the
    canonical initial weights, with the zero-initialised tensors replaced by :func:`random_bias` values when
    ``biases`` is ``random``."""
    check_bias_mode(biases)
    weights = initial_weights(workload, seed)
    if biases == RANDOM:
        spec = get_workload(workload)
        for param in spec.params:
            if param.init in ("zeros", "ones"):
                weights[param.name] = random_bias(spec, param.name, seed)
    return weights
