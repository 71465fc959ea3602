"""Near-ties: the reference's piecewise decisions that float32 rounding could legitimately take the other way.

ReLU (is z > 0?) and max-pooling (which input is the maximum?) are discontinuous in their *gradient*. When a
pre-activation lies within float32 rounding of 0, or two max-pool candidates lie within rounding of each
other, a correct float32 framework may decide differently from the float64 reference. The forward values
barely move, but the gradient then flows through another element. Measured on AlexNet (batch 2, seed 0):
one pool1 window whose two largest inputs differ by 4e-7 relative sends the gradient elsewhere in every
framework but one, and moves one output channel of the conv1 kernel gradient by 1.1e-2 of its scale, while
every other tensor agrees to 2e-6.

So instead of loosening the gradient tolerance for everyone, the reference finds those decisions and
computes their exact effect:

1. It reruns the forward pass in float32 (the same code) and takes, for every ReLU and max-pool layer,
   the largest float32 error of the layer's input as that layer's rounding scale. A decision is ambiguous
   when its margin (|z|, or the gap between the maximum and another candidate) is below ``TIE_MARGIN``
   times that scale: a framework using another float32 summation order may be a few times less accurate.
2. For each ambiguous decision that carries gradient, the change of the gradient at that layer's input is
   known exactly (dy moves from one element to another, or is switched on or off). Backpropagation is
   linear once the forward pass is fixed, so that change alone is backpropagated through the layers below,
   one sample, giving the exact change of every parameter gradient.
3. The envelope is the sum of the absolute changes: whichever subset of the decisions a framework takes
   differently, its gradients lie within it (to first order). Comparisons subtract the envelope from the
   absolute difference before applying the usual float32 tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dlbench.verify.layers import Activation, Array, Grads, Layer, MacCounter, MaxPool, Params

TIE_MARGIN = 10.0  # how much less accurate than a plain float32 GEMM another framework's kernel may be
MAX_DECISIONS = 256  # each costs one single-sample backward pass (slow for AlexNet); closest ties first
FLOAT32_EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Decision:
    """One ambiguous decision: ``delta`` is the change of the gradient w.r.t. the input of layer ``layer``
    (one sample, shape ``(1, *shape)``) if the decision went the other way; ``margin`` is in threshold units.

    The change touches one or two elements, so a decision stores only those (``changes``: position within the
    sample, added value) and ``delta`` builds the dense array on demand. Decisions are found by the thousand
    under bf16 (whose rounded activations are within the threshold of many ReLU/pool decisions), and a dense
    array per decision (2.3 MB for AlexNet's conv1 output) exhausted the memory before the closest
    ``MAX_DECISIONS`` were picked."""

    layer: int
    sample: int
    shape: tuple[int, ...]
    changes: tuple[tuple[tuple[int, ...], float], ...]
    margin: float

    @property
    def delta(self) -> Array:
        delta = np.zeros((1, *self.shape))
        for position, value in self.changes:
            delta[(0, *position)] += value
        return delta


@dataclass(frozen=True)
class TieAllowance:
    """What near-ties may change in the gradients: ``envelope[name]`` bounds the elementwise change."""

    found: int  # ambiguous decisions that carry gradient
    used: int  # those whose effect entered the envelope (at most MAX_DECISIONS)
    envelope: dict[str, Array]


def float32_input_errors(
    layers: Sequence[Layer], params: Params, x: Array, inputs: Sequence[Array]
) -> list[float]:
    """For each layer, the largest difference between its float64 input and the same input computed in
    float32 by the same code: the rounding scale at that point of the network."""
    names = {name for name in params}
    params32 = {name: np.asarray(params[name], dtype=np.float32) for name in names}
    h = np.asarray(x, dtype=np.float32)
    errors = []
    for layer, h64 in zip(layers, inputs, strict=True):
        errors.append(float(np.abs(h.astype(np.float64) - h64).max()) if h64.size else 0.0)
        h, _ = layer.forward(h, params32, MacCounter())
        h = h.astype(np.float32, copy=False)
    return errors


def _threshold(error: float, values: Array) -> float:
    """At least a few float32 units of the layer's scale, even where the measured error happens to be 0."""
    scale = float(np.abs(values).max()) if values.size else 0.0
    return TIE_MARGIN * max(error, FLOAT32_EPS * scale)


def relu_decisions(index: int, z: Array, dy: Array, threshold: float) -> list[Decision]:
    """ReLU inputs within ``threshold`` of 0: flipping the mask switches dy on (z <= 0) or off (z > 0)."""
    found = []
    shape = tuple(z.shape[1:])
    for position in zip(*np.nonzero((np.abs(z) < threshold) & (dy != 0)), strict=True):
        sign = -1.0 if z[position] > 0 else 1.0
        change = ((tuple(int(i) for i in position[1:]), sign * float(dy[position])),)
        found.append(Decision(index, int(position[0]), shape, change, abs(float(z[position])) / threshold))
    return found


def pool_decisions(
    index: int, pool: MaxPool, x: Array, arg: Array, dy: Array, threshold: float
) -> list[Decision]:
    """Max-pool windows where another candidate is within ``threshold`` of the maximum: dy would move from
    the chosen input to that candidate. Windows whose maximum is an exact 0 are skipped: their inputs come
    out of a ReLU that passes no gradient there, whichever of them is chosen."""
    k, s = pool.size, pool.stride
    windows = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]
    flat = windows.reshape(*windows.shape[:4], k * k)
    top = np.take_along_axis(flat, arg[..., None], axis=-1)
    close = (top - flat < threshold) & (top != 0) & (dy != 0)[..., None]
    close &= np.arange(k * k) != arg[..., None]
    found = []
    shape = tuple(x.shape[1:])
    for n, oh, ow, c, candidate in zip(*np.nonzero(close), strict=True):
        ci, cj = divmod(int(arg[n, oh, ow, c]), k)
        ai, aj = divmod(int(candidate), k)
        value = float(dy[n, oh, ow, c])
        changes = (((int(oh * s + ci), int(ow * s + cj), int(c)), -value),
                   ((int(oh * s + ai), int(ow * s + aj), int(c)), value))
        margin = float(top[n, oh, ow, c, 0] - flat[n, oh, ow, c, candidate]) / threshold
        found.append(Decision(index, int(n), shape, changes, margin))
    return found


def find_decisions(
    layers: Sequence[Layer],
    caches: Sequence[Any],
    inputs: Sequence[Array],
    upstream: Sequence[Array],
    errors: Sequence[float],
) -> list[Decision]:
    """Every ambiguous ReLU / max-pool decision that carries gradient, closest to a tie first.
    ``upstream[i]`` is the loss gradient w.r.t. the output of layer ``i``."""
    found: list[Decision] = []
    for index, layer in enumerate(layers):
        if index == 0:
            continue  # nothing below the first layer has parameters
        threshold = _threshold(errors[index], inputs[index])
        if isinstance(layer, Activation) and layer.kind == "relu":
            found += relu_decisions(index, inputs[index], upstream[index], threshold)
        elif isinstance(layer, MaxPool):
            found += pool_decisions(index, layer, inputs[index], caches[index][0], upstream[index], threshold)
    return sorted(found, key=lambda d: d.margin)


def decision_effect(
    layers: Sequence[Layer], params: Params, caches: Sequence[Any], decision: Decision
) -> Grads:
    """The exact change of every parameter gradient below the decision (backprop is linear in dy)."""
    grads: Grads = {}
    grad: Array | None = decision.delta
    for index in range(decision.layer - 1, -1, -1):
        assert grad is not None
        cache = layers[index].take(caches[index], decision.sample)
        grad = layers[index].backward(grad, cache, params, grads, need_dx=index > 0)
    return grads


def tie_allowance(
    layers: Sequence[Layer],
    params: Params,
    x: Array,
    caches: Sequence[Any],
    inputs: Sequence[Array],
    upstream: Sequence[Array],
) -> TieAllowance:
    """The near-tie envelope of a sequential network's gradients (see the module docstring)."""
    errors = float32_input_errors(layers, params, x, inputs)
    decisions = find_decisions(layers, caches, inputs, upstream, errors)
    envelope: dict[str, Array] = {}
    for decision in decisions[:MAX_DECISIONS]:
        for name, change in decision_effect(layers, params, caches, decision).items():
            envelope[name] = envelope.get(name, 0.0) + np.abs(change)
    return TieAllowance(found=len(decisions), used=min(len(decisions), MAX_DECISIONS), envelope=envelope)
