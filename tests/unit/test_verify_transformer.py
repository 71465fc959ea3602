"""The NumPy reference of the transformer workload: its hand-written backward passes and its masking.

* Layer norm, exact GELU and masked multi-head attention: every input and parameter gradient against central
  finite differences in float64, on small shapes.
* The whole encoder: the gradient of every parameter tensor in a random direction against central finite
  differences, on short sequences (the reference runs any length up to 128, which keeps this cheap).
* The mask: each sequence run alone, truncated to its valid tokens and with no mask at all, by a naive
  per-head loop written from workloads.md, gives the same logits as the masked batch; padded token ids change
  nothing.
* Counts: the MACs the reference performs at length 128 are the documented 436,208,128 per sample.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from dlbench.verify.layers import (
    attention,
    attention_backward,
    gelu,
    gelu_backward,
    key_padding_bias,
    layer_norm,
    layer_norm_backward,
)
from dlbench.verify.reference import reference_evaluate
from dlbench.workloads import Batch, get_workload, initial_weights, make_batch
from tests.verify_fixtures import numeric_gradient

RNG = np.random.default_rng(2024)


def test_layer_norm_gradients_match_finite_differences() -> None:
    x, gamma, beta = RNG.standard_normal((2, 3, 6)), RNG.standard_normal(6), RNG.standard_normal(6)
    r = RNG.standard_normal((2, 3, 6))
    y, cache = layer_norm(x, gamma, beta)
    dx, dgamma, dbeta = layer_norm_backward(r, cache, gamma)
    np.testing.assert_allclose(
        dx, numeric_gradient(lambda v: float((layer_norm(v, gamma, beta)[0] * r).sum()), x.copy()),
        rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        dgamma, numeric_gradient(lambda v: float((layer_norm(x, v, beta)[0] * r).sum()), gamma.copy()), rtol=1e-6)
    np.testing.assert_allclose(
        dbeta, numeric_gradient(lambda v: float((layer_norm(x, gamma, v)[0] * r).sum()), beta.copy()), rtol=1e-6)


def test_layer_norm_uses_epsilon_1e_minus_5() -> None:
    """A constant row has variance 0: the output is beta exactly; a row of variance 1e-5 is scaled by
    1/sqrt(2e-5), which tells 1e-5 from Keras's default 1e-3."""
    x = np.array([[[1.0, -1.0]]]) * np.sqrt(1e-5)
    y, _ = layer_norm(x, np.ones(2), np.zeros(2))
    np.testing.assert_allclose(y[0, 0], [np.sqrt(0.5), -np.sqrt(0.5)], rtol=1e-12)


def test_gelu_is_exact_and_its_gradient_matches_finite_differences() -> None:
    x = np.linspace(-4, 4, 41)
    np.testing.assert_allclose(gelu(x), x * 0.5 * (1 + erf(x / np.sqrt(2))), rtol=1e-15)
    tanh_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    assert np.abs(gelu(x) - tanh_form).max() > 1e-4  # the approximation is a different function
    r = RNG.standard_normal(x.shape)
    np.testing.assert_allclose(gelu_backward(r, x), numeric_gradient(lambda v: float((gelu(v) * r).sum()), x.copy()),
                               rtol=1e-6, atol=1e-9)


def test_masked_attention_gradients_match_finite_differences() -> None:
    n, t, d, heads = 2, 5, 8, 2
    q, k, v = (RNG.standard_normal((n, t, d)) for _ in range(3))
    mask = np.ones((n, t))
    mask[1, 3:] = 0.0
    bias = key_padding_bias(mask)
    r = RNG.standard_normal((n, t, d))
    out, cache = attention(q, k, v, bias, heads)
    grads = attention_backward(r, cache)
    for index, value in enumerate((q, k, v)):

        def loss(x: np.ndarray, index: int = index) -> float:
            args = [q, k, v]
            args[index] = x
            return float((attention(*args, bias, heads)[0] * r).sum())

        np.testing.assert_allclose(grads[index], numeric_gradient(loss, value.copy()), rtol=1e-6, atol=1e-8)
    # padded keys get probability 0, and their keys and values no gradient
    probs = cache[3]
    assert (probs[1, :, :, 3:] == 0).all()
    assert (grads[1][1, 3:] == 0).all() and (grads[2][1, 3:] == 0).all()


def short_batch(lengths: list[int], steps: int, seed: int = 0) -> Batch:
    """Token ids of a few short sequences (the reference takes any length up to the position table's)."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, 10_000, size=(len(lengths), steps), dtype=np.int32)
    lengths_array = np.array(lengths, dtype=np.int32)
    tokens[np.arange(steps)[None, :] >= lengths_array[:, None]] = 0
    return Batch(tokens, rng.integers(0, 2, size=len(lengths), dtype=np.int32), lengths_array)


def lively_weights() -> dict[str, np.ndarray]:
    """The canonical weights in float64 with non-trivial layer norms and biases, so that every parameter
    tensor's gradient is exercised away from the identity initialisation."""
    rng = np.random.default_rng(11)
    weights = {}
    for name, value in initial_weights("transformer").items():
        value = value.astype(np.float64)
        if name.endswith((".bias", ".beta")):
            value = rng.uniform(-0.2, 0.2, value.shape)
        elif name.endswith(".gamma"):
            value = 1.0 + rng.uniform(-0.3, 0.3, value.shape)
        weights[name] = value
    return weights


def test_transformer_gradients_match_finite_differences_in_random_directions() -> None:
    """For every parameter tensor, <gradient, v> against (L(w + eps v) - L(w - eps v)) / (2 eps) for a random
    direction v over the whole tensor, on two short sequences, one of them padded."""
    batch = short_batch([6, 4], steps=6)
    weights = lively_weights()
    ref = reference_evaluate("transformer", "", batch, weights, calibrate=False).evaluation
    rng = np.random.default_rng(5)
    eps = 1e-5

    def loss(params: dict[str, np.ndarray]) -> float:
        return reference_evaluate("transformer", "", batch, params, gradients=False, calibrate=False).evaluation.loss

    for name, grad in ref.gradients.items():
        value = weights[name]
        direction = rng.standard_normal(value.shape)
        up = loss({**weights, name: value + eps * direction})
        down = loss({**weights, name: value - eps * direction})
        numeric_value = (up - down) / (2 * eps)
        analytic = float((grad * direction).sum())
        bound = 1e-6 * float(np.linalg.norm(grad) * np.linalg.norm(direction)) + 1e-10
        assert abs(analytic - numeric_value) <= bound, (name, analytic, numeric_value)
    # position rows beyond the sequence and embedding rows of absent tokens get exactly zero
    assert not ref.gradients["position.table"][6:].any()
    absent = np.setdiff1d(np.arange(10), np.unique(batch.x))
    assert not ref.gradients["embedding.table"][absent].any()


def naive_logits(weights: dict[str, np.ndarray], tokens: np.ndarray) -> np.ndarray:
    """One unpadded sequence through the encoder with explicit per-head loops and no mask (workloads.md)."""
    spec = get_workload("transformer")
    heads, layers = spec.extra["heads"], spec.extra["layers"]
    steps = len(tokens)

    def norm(x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * weights[f"{name}.gamma"] + weights[f"{name}.beta"]

    def dense(x: np.ndarray, name: str) -> np.ndarray:
        return x @ weights[f"{name}.kernel"] + weights[f"{name}.bias"]

    h = weights["embedding.table"][tokens] + weights["position.table"][:steps]
    for i in range(layers):
        a = norm(h, f"layer{i}.ln1")
        q, k, v = (dense(a, f"layer{i}.attn.{p}") for p in ("query", "key", "value"))
        width = q.shape[1] // heads
        context = np.zeros_like(q)
        for head in range(heads):
            cols = slice(head * width, (head + 1) * width)
            scores = q[:, cols] @ k[:, cols].T / np.sqrt(width)
            probs = np.exp(scores - scores.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            context[:, cols] = probs @ v[:, cols]
        h = h + dense(context, f"layer{i}.attn.output")
        u = dense(norm(h, f"layer{i}.ln2"), f"layer{i}.ff1")
        h = h + dense(0.5 * u * (1 + erf(u / np.sqrt(2))), f"layer{i}.ff2")
    pooled = norm(h, "final_ln").mean(axis=0)
    return pooled @ weights["classifier.kernel"] + weights["classifier.bias"]


def test_masked_batch_equals_each_sequence_alone_without_padding() -> None:
    batch = short_batch([9, 3, 6], steps=9, seed=3)
    weights = lively_weights()
    logits = reference_evaluate("transformer", "", batch, weights, gradients=False, calibrate=False).evaluation
    for row, length in enumerate(batch.lengths):
        expected = naive_logits(weights, batch.x[row, :length])
        np.testing.assert_allclose(logits.output[row], expected, rtol=1e-10, atol=1e-12)
    # whatever sits in the padded positions changes nothing
    noisy = batch.x.copy()
    noisy[noisy == 0] = 4242
    changed = Batch(noisy, batch.y, batch.lengths)
    other = reference_evaluate("transformer", "", changed, weights, gradients=False, calibrate=False)
    np.testing.assert_allclose(other.evaluation.output, logits.output, rtol=1e-12)


@pytest.mark.parametrize("batch_size", [1])
def test_counts_match_workloads_md(batch_size: int) -> None:
    spec = get_workload("transformer")
    ref = reference_evaluate("transformer", "", make_batch("transformer", batch_size), initial_weights("transformer"),
                             calibrate=False)
    assert ref.macs_per_sample == spec.macs() == 436_208_128
    assert sum(g.size for g in ref.evaluation.gradients.values()) == spec.trainable_params() == 5_752_834
    assert list(ref.evaluation.gradients) == list(spec.phase("").trainable)
