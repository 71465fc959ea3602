"""Near-tie analysis: the effect computed for an ambiguous decision must be exactly what taking the
decision the other way does to the gradients (checked by brute force: edit the decision in the cache,
backpropagate again)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dlbench.verify.layers import (
    Activation,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MacCounter,
    MaxPool,
    softmax_cross_entropy,
)
from dlbench.verify.reference import NOISE_FACTOR, reference_evaluate
from dlbench.verify.ties import decision_effect, find_decisions, relu_decisions, tie_allowance
from dlbench.workloads import initial_weights, make_batch

RNG = np.random.default_rng(11)


def run(
    layers: tuple[Layer, ...],
    params: dict[str, np.ndarray],
    x: np.ndarray,
    labels: np.ndarray,
    caches: list[Any] | None = None,
) -> tuple[list[Any], list[np.ndarray], list[np.ndarray], dict[str, np.ndarray]]:
    """Forward (unless caches are given) and backward; returns caches, layer inputs, upstream grads, grads."""
    inputs = []
    h = x
    fresh = caches is None
    caches = [] if caches is None else caches
    for index, layer in enumerate(layers):
        inputs.append(h)
        h, cache = layer.forward(h, params, MacCounter())
        if fresh:
            caches.append(cache)
        else:
            assert caches[index] is not None
    _, grad = softmax_cross_entropy(h, labels)
    upstream: list[np.ndarray] = [grad] * len(layers)
    grads: dict[str, np.ndarray] = {}
    for index in range(len(layers) - 1, -1, -1):
        upstream[index] = grad
        grad = layers[index].backward(grad, caches[index], params, grads, need_dx=index > 0)
    return caches, inputs, upstream, grads


def small_net_params() -> dict[str, np.ndarray]:
    return {
        "c.kernel": RNG.standard_normal((1, 1, 3, 4)),
        "c.bias": np.zeros(4),
        "d.kernel": RNG.standard_normal((4 * 2 * 2, 3)),
        "d.bias": RNG.standard_normal(3),
    }


def test_pool_tie_effect_equals_rerouting_the_gradient() -> None:
    layers = (Conv2D("c"), MaxPool(2, 2), Flatten(), Dense("d"))
    w = RNG.uniform(0.5, 1.5, 3)
    params = {
        "c.kernel": w.reshape(1, 1, 3, 1),
        "c.bias": np.zeros(1),
        "d.kernel": RNG.standard_normal((2 * 2, 3)),
        "d.bias": RNG.standard_normal(3),
    }
    x = RNG.standard_normal((2, 4, 4, 3))
    # Window of output (1, 1), sample 1: inputs (2, 3) and (3, 3) differ, but their convolution outputs are
    # equal up to 1e-13 (the difference is orthogonal to the kernel), and (2, 2), (3, 2) give 0.
    x[1, 3, 3] = np.abs(x[1, 3, 3]) + 0.5
    r = RNG.standard_normal(3)
    x[1, 2, 3] = x[1, 3, 3] + (r - (r @ w) / (w @ w) * w) + 1e-13 * w
    x[1, 2, 2] = x[1, 3, 2] = 0.0
    labels = np.array([0, 2])
    caches, inputs, upstream, grads = run(layers, params, x, labels)
    decisions = find_decisions(layers, caches, inputs, upstream, errors=[0.0, 1e-12, 0.0, 0.0])
    ours = [d for d in decisions if d.layer == 1 and d.sample == 1]
    assert len(ours) == 1, "the constructed near-tie was not found"
    arg, shape = caches[1]
    assert arg[1, 1, 1, 0] == 1  # (2, 3) is local index 1 and won by 1e-13; (3, 3) is index 3
    flipped = arg.copy()
    flipped[1, 1, 1, 0] = 3
    _, _, _, alternative = run(layers, params, x, labels, [caches[0], (flipped, shape), caches[2], caches[3]])
    effect = decision_effect(layers, params, caches, ours[0])
    np.testing.assert_allclose(alternative["c.kernel"] - grads["c.kernel"], effect["c.kernel"], atol=1e-12)
    assert np.abs(effect["c.kernel"]).max() > 1e-3  # the decision really matters
    assert "d.kernel" not in effect  # the layer above the decision is not affected


def test_relu_tie_effect_equals_switching_the_mask() -> None:
    layers = (Conv2D("c"), Activation("relu"), Flatten(), Dense("d"))
    params = small_net_params()
    params["d.kernel"] = RNG.standard_normal((2 * 2 * 4, 3))
    x = RNG.standard_normal((1, 2, 2, 3))
    x[0, 1, 0] = 0.0
    params["c.bias"] = np.array([0.5, -0.5, 1e-14, 0.7])  # z = +1e-14 at (0, 1, 0, 2): within rounding of 0
    labels = np.array([1])
    caches, inputs, upstream, grads = run(layers, params, x, labels)
    decisions = [
        d for d in find_decisions(layers, caches, inputs, upstream, [0.0, 1e-12, 0.0, 0.0]) if d.layer == 1
    ]
    assert len(decisions) == 1
    mask = caches[1].copy()
    assert mask[0, 1, 0, 2]
    mask[0, 1, 0, 2] = False
    _, _, _, alternative = run(layers, params, x, labels, [caches[0], mask, caches[2], caches[3]])
    effect = decision_effect(layers, params, caches, decisions[0])
    for name in ("c.kernel", "c.bias"):
        np.testing.assert_allclose(alternative[name] - grads[name], effect[name], atol=1e-15)
    assert np.abs(effect["c.bias"]).max() > 1e-3


def test_clear_decisions_are_not_ambiguous() -> None:
    layers = (Conv2D("c"), Activation("relu"), MaxPool(2, 2), Flatten(), Dense("d"))
    params = small_net_params()
    x = RNG.standard_normal((2, 4, 4, 3))
    caches, inputs, upstream, _ = run(layers, params, x, np.array([0, 1]))
    allowance = tie_allowance(layers, params, x, caches, inputs, upstream)
    assert allowance.found == 0 and allowance.envelope == {}


def test_lenet_reference_allowance_covers_every_tensor() -> None:
    ref = reference_evaluate("lenet", "", make_batch("lenet", 2), initial_weights("lenet"))
    assert ref.ties is not None
    assert set(ref.allowance) == {"output", "loss", *ref.evaluation.gradients}
    for name, grad in ref.evaluation.gradients.items():
        allowance = np.broadcast_to(ref.allowance[name], grad.shape)
        assert (allowance >= 0).all()
        # float32 noise is tiny against the tensor's scale: the allowance cannot hide a layout bug.
        assert allowance.max() < 1e-3 * np.abs(grad).max()
    smooth = reference_evaluate("lstm", "", make_batch("lstm", 2), initial_weights("lstm"))
    assert smooth.ties is None
    assert smooth.allowance["loss"] == pytest.approx(0.0, abs=NOISE_FACTOR * 1e-6)


def test_thousands_of_near_ties_cost_little_memory() -> None:
    """Under bf16 the reference finds near-ties by the hundred thousand (AlexNet: 258,009 at batch 2); each
    decision must hold its one or two changed elements, not a dense copy of the layer's input."""
    import tracemalloc

    z = np.full((2, 64, 64, 16), 1e-9)  # every ReLU input within the threshold of 0
    tracemalloc.start()
    decisions = relu_decisions(1, z, np.ones_like(z), threshold=1e-6)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(decisions) == z.size
    assert peak < 1000 * z.size  # a few hundred bytes each; dense deltas would take z.size * z[0].nbytes = 69 GB
    assert decisions[5].delta.shape == (1, 64, 64, 16) and np.count_nonzero(decisions[5].delta) == 1
