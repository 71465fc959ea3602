"""The NumPy reference of ``dlbench verify``: layouts, known values, counts and gradients.

Gradients are checked against central finite differences in float64 (layer by layer on small shapes with
AlexNet's strides and paddings, and end to end through every network), so the hand-written backward passes
are tested independently of any framework. Layouts are checked against naive loop implementations written
from ``workloads.md``.
"""

from __future__ import annotations

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
from dlbench.verify.reference import reference_evaluate
from dlbench.workloads import Batch, get_workload, initial_weights, make_batch
from tests.verify_fixtures import numeric_gradient

RNG = np.random.default_rng(1234)
TARGETS = [
    ("lenet", ""),
    ("autoencoder", "pretrain1"),
    ("autoencoder", "pretrain2"),
    ("autoencoder", "pretrain3"),
    ("autoencoder", "finetune"),
    ("lstm", ""),
]


def check_layer(layer: Layer, x: np.ndarray, params: dict[str, np.ndarray]) -> None:
    """Loss = sum(y * r) for a fixed random r; compare input and parameter gradients with finite
    differences."""
    y, cache = layer.forward(x, params, MacCounter())
    r = RNG.standard_normal(y.shape)
    grads: dict[str, np.ndarray] = {}
    dx = layer.backward(r, cache, params, grads, need_dx=True)

    def loss_of_x(value: np.ndarray) -> float:
        return float((layer.forward(value, params, MacCounter())[0] * r).sum())

    np.testing.assert_allclose(dx, numeric_gradient(loss_of_x, x.copy()), rtol=1e-6, atol=1e-8)
    for name, value in params.items():

        def loss_of_param(v: np.ndarray, name: str = name) -> float:
            return float((layer.forward(x, {**params, name: v}, MacCounter())[0] * r).sum())

        np.testing.assert_allclose(
            grads[name], numeric_gradient(loss_of_param, value.copy()), rtol=1e-6, atol=1e-8
        )


@pytest.mark.parametrize(("stride", "pad", "size"), [(1, 0, 6), (1, 2, 5), (4, 0, 11), (2, 1, 7)])
def test_conv_gradients_match_finite_differences(stride: int, pad: int, size: int) -> None:
    params = {"c.kernel": RNG.standard_normal((3, 3, 2, 4)), "c.bias": RNG.standard_normal(4)}
    check_layer(Conv2D("c", stride=stride, pad=pad), RNG.standard_normal((2, size, size, 2)), params)


@pytest.mark.parametrize(("size", "stride", "width"), [(2, 2, 8), (3, 2, 13), (3, 2, 7)])
def test_max_pool_gradients_match_finite_differences(size: int, stride: int, width: int) -> None:
    check_layer(MaxPool(size, stride), RNG.standard_normal((2, width, width, 3)), {})


@pytest.mark.parametrize("kind", ["tanh", "relu"])
def test_activation_gradients(kind: str) -> None:
    x = RNG.standard_normal((3, 7))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the ReLU kink
    check_layer(Activation(kind), x, {})


def test_dense_gradients() -> None:
    params = {"d.kernel": RNG.standard_normal((5, 3)), "d.bias": RNG.standard_normal(3)}
    check_layer(Dense("d"), RNG.standard_normal((4, 5)), params)


def test_conv_matches_a_naive_hwio_loop() -> None:
    """The im2col column order must be the HWIO kernel's (i, j, c) order; padding symmetric."""
    x = RNG.standard_normal((2, 9, 9, 3))
    kernel, bias = RNG.standard_normal((3, 3, 3, 5)), RNG.standard_normal(5)
    y, _ = Conv2D("c", stride=2, pad=1).forward(x, {"c.kernel": kernel, "c.bias": bias}, MacCounter())
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = np.zeros((2, 5, 5, 5))
    for n in range(2):
        for oh in range(5):
            for ow in range(5):
                for o in range(5):
                    total = bias[o]
                    for i in range(3):
                        for j in range(3):
                            for c in range(3):
                                total += padded[n, 2 * oh + i, 2 * ow + j, c] * kernel[i, j, c, o]
                    expected[n, oh, ow, o] = total
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_overlapping_pool_takes_window_maxima() -> None:
    x = RNG.standard_normal((1, 7, 7, 2))
    y, _ = MaxPool(3, 2).forward(x, {}, MacCounter())
    assert y.shape == (1, 3, 3, 2)
    assert y[0, 1, 2, 1] == x[0, 2:5, 4:7, 1].max()


def test_flatten_is_height_width_channel_order() -> None:
    """workloads.md: a feature map flattens in H, W, C order (fc1 row (h*4 + w)*50 + c for LeNet)."""
    x = np.zeros((1, 4, 4, 50))
    x[0, 1, 2, 7] = 1.0
    flat, _ = Flatten().forward(x, {}, MacCounter())
    assert flat[0].argmax() == (1 * 4 + 2) * 50 + 7


def test_softmax_cross_entropy_known_values() -> None:
    loss, grad = softmax_cross_entropy(np.zeros((2, 10)), np.array([3, 7]))
    assert loss == pytest.approx(np.log(10))
    expected = np.full((2, 10), 0.1 / 2)
    expected[0, 3] -= 0.5
    expected[1, 7] -= 0.5
    np.testing.assert_allclose(grad, expected)
    big, _ = softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))
    assert big == pytest.approx(1000.0)  # stable for large logits


def zero_weights(workload: str) -> dict[str, np.ndarray]:
    return {k: np.zeros_like(v) for k, v in initial_weights(workload).items()}


def test_zero_weight_networks_have_known_losses() -> None:
    """All-zero weights: uniform logits (loss log K), and an autoencoder reconstruction of exactly 0.5."""
    for workload in ("lenet", "lstm"):
        batch = make_batch(workload, 3)
        ev = reference_evaluate(workload, "", batch, zero_weights(workload)).evaluation
        classes = get_workload(workload).num_classes
        assert ev.loss == pytest.approx(np.log(classes))
        bias_grad = np.full(classes, 1.0 / classes) - np.bincount(batch.y, minlength=classes) / 3
        grad_name = "fc2.bias" if workload == "lenet" else "classifier.bias"
        np.testing.assert_allclose(ev.gradients[grad_name], bias_grad, atol=1e-15)
    batch = make_batch("autoencoder", 3)
    ev = reference_evaluate("autoencoder", "pretrain1", batch, zero_weights("autoencoder")).evaluation
    np.testing.assert_allclose(ev.output, 0.5)
    assert ev.loss == pytest.approx(((0.5 - batch.x.astype(np.float64)) ** 2).sum() / 6)


@pytest.mark.parametrize(("workload", "phase"), TARGETS)
def test_counts_match_workloads_md(workload: str, phase: str) -> None:
    ref = reference_evaluate(workload, phase, make_batch(workload, 2), initial_weights(workload))
    spec = get_workload(workload)
    assert ref.macs_per_sample == spec.macs(phase)
    assert sum(g.size for g in ref.evaluation.gradients.values()) == spec.trainable_params(phase)
    assert list(ref.evaluation.gradients) == list(spec.phase(phase).trainable)
    for name, grad in ref.evaluation.gradients.items():
        assert grad.shape == spec.param(name).shape


def perturbed_weights(workload: str) -> dict[str, np.ndarray]:
    """Canonical kernels and non-zero biases: out of the flat regime of the zero-bias init, so that every
    gate and bias really matters in the gradient checks. (Larger kernels saturate LeNet's tanh, and the
    near-ties of saturated values in the max-pools then defeat finite differences.)"""
    rng = np.random.default_rng(7)
    weights = {}
    for name, value in initial_weights(workload).items():
        if name.endswith("bias"):
            weights[name] = rng.uniform(-0.5, 0.5, value.shape)
        else:
            weights[name] = value.astype(np.float64)
    return weights


def directional_check(
    workload: str,
    phase: str,
    batch: Batch,
    weights: dict[str, np.ndarray],
    names: list[str] | None = None,
    eps: float = 1e-8,
    rel: float = 1e-5,
) -> None:
    """<gradient, v> against (L(w + eps v) - L(w - eps v)) / (2 eps) for a random v, one tensor at a time.
    eps is small because of the kinks (max-pool switches, ReLU): a step that crosses one averages two slopes
    (LeNet's 8,640 pool windows at batch 3 include a top-2 gap of 2e-7). In float64 the rounding of the
    difference quotient is still ~1e-8 absolute."""
    ev = reference_evaluate(workload, phase, batch, weights, calibrate=False).evaluation
    rng = np.random.default_rng(3)
    for name in names or list(ev.gradients):
        v = rng.standard_normal(weights[name].shape)
        if name == "embedding.table":
            v[0] = 0.0  # keep the padding row (id 0) out: it moves only masked steps
        up = reference_evaluate(
            workload, phase, batch, {**weights, name: weights[name] + eps * v}, False, False
        )
        down = reference_evaluate(
            workload, phase, batch, {**weights, name: weights[name] - eps * v}, False, False
        )
        numeric = (up.evaluation.loss - down.evaluation.loss) / (2 * eps)
        analytic = float((ev.gradients[name] * v).sum())
        assert analytic == pytest.approx(numeric, rel=rel, abs=1e-7), name


@pytest.mark.parametrize(("workload", "phase"), TARGETS)
def test_network_gradients_match_finite_differences(workload: str, phase: str) -> None:
    directional_check(workload, phase, make_batch(workload, 3), perturbed_weights(workload))


def test_alexnet_gradients_match_finite_differences() -> None:
    """The stride-4 first layer, a padded convolution and the flatten into fc6 (the rest is covered
    layer by layer)."""
    weights = {k: v.astype(np.float64) for k, v in initial_weights("alexnet").items()}
    names = ["conv1.kernel", "conv2.kernel", "fc6.kernel"]
    # 290k ReLUs and overlapping pools: only a very small step avoids every kink.
    directional_check("alexnet", "", make_batch("alexnet", 1), weights, names, rel=1e-6)


def naive_lstm_logits(tokens: np.ndarray, lengths: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """Element by element, straight from workloads.md: gates i, f, g, o in that order, one bias."""
    hidden = w["lstm.recurrent_kernel"].shape[0]
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    logits = []
    for seq, length in zip(tokens, lengths, strict=True):
        h, c = np.zeros(hidden), np.zeros(hidden)
        total = np.zeros(hidden)
        for t, token in enumerate(seq):
            x = w["embedding.table"][token]
            z = [
                x @ w["lstm.input_kernel"][:, k * hidden : (k + 1) * hidden]
                + h @ w["lstm.recurrent_kernel"][:, k * hidden : (k + 1) * hidden]
                + w["lstm.bias"][k * hidden : (k + 1) * hidden]
                for k in range(4)
            ]
            i, f, g, o = sig(z[0]), sig(z[1]), np.tanh(z[2]), sig(z[3])
            c = f * c + i * g
            h = o * np.tanh(c)
            if t < length:
                total += h
        pooled = total / length
        logits.append(pooled @ w["classifier.kernel"] + w["classifier.bias"])
    return np.array(logits)


def test_lstm_matches_a_naive_gate_by_gate_loop() -> None:
    rng = np.random.default_rng(5)
    vocab, dim, hidden, steps = 11, 3, 4, 6
    w = {
        "embedding.table": rng.standard_normal((vocab, dim)),
        "lstm.input_kernel": rng.standard_normal((dim, 4 * hidden)),
        "lstm.recurrent_kernel": rng.standard_normal((hidden, 4 * hidden)),
        "lstm.bias": rng.standard_normal(4 * hidden),
        "classifier.kernel": rng.standard_normal((hidden, 2)),
        "classifier.bias": rng.standard_normal(2),
    }
    lengths = np.array([6, 3, 1], dtype=np.int32)
    tokens = rng.integers(1, vocab, size=(3, steps)).astype(np.int32)
    tokens[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    batch = Batch(tokens, np.array([0, 1, 1], dtype=np.int32), lengths)
    ref = reference_evaluate("lstm", "", batch, w)
    np.testing.assert_allclose(ref.evaluation.output, naive_lstm_logits(tokens, lengths, w), rtol=1e-12)
    assert not ref.evaluation.gradients["embedding.table"][0].any()  # padding comes after the valid steps


def test_pretrain_uses_the_tied_transposed_kernel() -> None:
    """pretrain2: h1 from the frozen encoder 1 is the target; the decoder is enc2.kernel transposed."""
    w = perturbed_weights("autoencoder")
    batch = make_batch("autoencoder", 2)
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    h1 = sig(batch.x.astype(np.float64) @ w["enc1.kernel"] + w["enc1.bias"])
    h2 = sig(h1 @ w["enc2.kernel"] + w["enc2.bias"])
    recon = sig(h2 @ w["enc2.kernel"].T + w["dec2.bias"])
    ev = reference_evaluate("autoencoder", "pretrain2", batch, w).evaluation
    np.testing.assert_allclose(ev.output, recon, rtol=1e-12)
    assert ev.loss == pytest.approx(((recon - h1) ** 2).sum() / 4)
