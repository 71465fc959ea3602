"""The JAX adapter against the canonical workloads, and against small independent NumPy computations.

The NumPy references below are written from workloads.md, not from the adapter, in float64: if the
adapter's layout, gate order, tied decoder, masking or bias wiring were wrong, they would disagree. Biases
are set to non-zero values for those checks (the canonical initial biases are zeros and would hide a
missing or misplaced bias). Batch sizes are small to keep the suite quick; AlexNet runs at batch 1 only.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pytest

pytest.importorskip("jax")
import jax  # noqa: E402

from dlbench.errors import DlbenchError  # noqa: E402
from dlbench.frameworks.base import BuildRequest, BuiltCase, CaseUnavailable  # noqa: E402
from dlbench.frameworks.jax_ import JaxAdapter  # noqa: E402
from dlbench.workloads import Batch, get_workload, initial_weights, make_batch  # noqa: E402
from dlbench.workloads.definitions import forward_flops, pass_flops  # noqa: E402

pytestmark = pytest.mark.integration

ALL_CASES = [
    ("lenet", ""),
    ("alexnet", ""),
    ("autoencoder", "pretrain1"),
    ("autoencoder", "pretrain2"),
    ("autoencoder", "pretrain3"),
    ("autoencoder", "finetune"),
    ("lstm", ""),
]
FORWARD_RTOL, FORWARD_ATOL = 1e-4, 1e-5  # float32 network vs float64 NumPy


def batch_size_for(workload: str) -> int:
    return 1 if workload == "alexnet" else 3


def with_random_biases(workload: str, seed: int = 1) -> dict[str, np.ndarray]:
    """Canonical weights with non-zero biases, so that bias wiring shows up in numerical checks."""
    rng = np.random.default_rng(seed)
    weights = dict(initial_weights(workload))
    for name, value in weights.items():
        if name.endswith("bias"):
            weights[name] = rng.uniform(-0.5, 0.5, size=value.shape).astype(np.float32)
    return weights


def make_request(
    workload: str,
    phase: str = "",
    batch_size: int = 2,
    variant: str = "jit",
    dropout: bool = True,
    weights: Mapping[str, np.ndarray] | None = None,
    batch: Batch | None = None,
    precision: str = "float32",
) -> BuildRequest:
    return BuildRequest(
        workload=get_workload(workload),
        phase=phase,
        batch=batch if batch is not None else make_batch(workload, batch_size),
        weights=weights if weights is not None else initial_weights(workload),
        variant=variant,
        device="cpu",
        precision=precision,
        dropout=dropout,
    )


def run(case: BuiltCase, pass_: str) -> Any:
    handle = case.prepare(pass_)()
    case.sync(handle)
    return handle


def to_numpy(tree: Any) -> Any:
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


@pytest.fixture(scope="module")
def adapter() -> JaxAdapter:
    adapter = JaxAdapter()
    adapter.initialize("cpu", 1)
    return adapter


class Shared:
    """A built case shared by several tests, with each pass prepared (compiled) once."""

    def __init__(self, case: BuiltCase) -> None:
        self.case = case
        self._calls: dict[str, Callable[[], Any]] = {}

    def run(self, pass_: str) -> Any:
        if pass_ not in self._calls:
            self._calls[pass_] = self.case.prepare(pass_)
        handle = self._calls[pass_]()
        self.case.sync(handle)
        return handle


@pytest.fixture(scope="module")
def built(adapter: JaxAdapter) -> Iterator[Callable[..., Shared]]:
    """Build each distinct request once per module: compiling is the slow part of these tests."""
    cache: dict[tuple[Any, ...], Shared] = {}

    def get(workload: str, phase: str = "", batch_size: int = 2, variant: str = "jit",
            dropout: bool = True) -> Shared:
        key = (workload, phase, batch_size, variant, dropout)
        if key not in cache:
            cache[key] = Shared(adapter.build(make_request(workload, phase, batch_size, variant, dropout)))
        return cache[key]

    yield get
    for shared in cache.values():
        shared.case.close()


# ----------------------------------------------------------------------------------------------------
# Cheap adapter queries (parent side) and initialisation.
# ----------------------------------------------------------------------------------------------------
def test_module_import_does_not_import_jax() -> None:
    code = "import sys, dlbench.frameworks.jax_; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_metadata() -> None:
    adapter = JaxAdapter()
    assert (adapter.name, adapter.display_name, adapter.module) == ("jax", "JAX", "jax")
    assert adapter.default_variant in adapter.variants
    assert set(adapter.variants) == set(adapter.variant_help) == {"jit", "jit_reduce_window"}
    assert adapter.version() == jax.__version__


def test_worker_env() -> None:
    adapter = JaxAdapter()
    cpu = adapter.worker_env("cpu", 2)
    assert cpu["JAX_PLATFORMS"] == "cpu"
    assert cpu["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert cpu["JAX_DEFAULT_MATMUL_PRECISION"] == "highest"
    assert adapter.worker_env("gpu", 1)["JAX_PLATFORMS"] == "cuda"
    assert not any("thread" in value.lower() for value in cpu.values())
    with pytest.raises(DlbenchError, match="unknown device"):
        adapter.worker_env("tpu", 1)


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        ({"jaxlib": "0.10.2"}, False),
        ({"jaxlib": "0.10.2", "jax-cuda12-plugin": "0.10.2"}, True),
        ({"jaxlib": "0.10.2", "jax-cuda13-plugin": "0.10.2"}, True),
        ({"jaxlib": "0.4.28+cuda12.cudnn89"}, True),
    ],
)
def test_supports_gpu_build(
    monkeypatch: pytest.MonkeyPatch, installed: dict[str, str], expected: bool
) -> None:
    def fake_version(dist: str) -> str:
        if dist not in installed:
            raise importlib.metadata.PackageNotFoundError(dist)
        return installed[dist]

    monkeypatch.setattr(importlib.metadata, "version", fake_version)
    assert JaxAdapter().supports_gpu_build() is expected


def test_initialize_reports_what_is_in_effect(adapter: JaxAdapter) -> None:
    info = adapter.initialize("cpu", 1)
    assert info.framework == "jax"
    assert info.version == jax.__version__
    assert info.threads == len(os.sched_getaffinity(0))
    assert info.devices == ("cpu",) or "cpu" in info.devices
    assert info.backends["jaxlib"]
    assert info.settings["matmul_precision"] == "highest"
    assert info.settings["affinity_cores"] == str(len(os.sched_getaffinity(0)))
    assert jax.config.jax_default_matmul_precision == "highest"  # type: ignore[attr-defined]


def test_initialize_gpu_without_gpu_is_a_clear_error(adapter: JaxAdapter) -> None:
    try:
        jax.devices("gpu")
    except RuntimeError:
        pass
    else:
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="no gpu backend"):
        adapter.initialize("gpu", 1)


# ----------------------------------------------------------------------------------------------------
# Bad requests.
# ----------------------------------------------------------------------------------------------------
def test_unknown_variant_is_a_user_error(adapter: JaxAdapter) -> None:
    with pytest.raises(DlbenchError, match="unknown JAX variant"):
        adapter.build(make_request("lenet", variant="pmap"))


def test_other_precisions_are_unavailable(adapter: JaxAdapter) -> None:
    with pytest.raises(CaseUnavailable, match="float32"):
        adapter.build(make_request("lenet", precision="bfloat16"))


def test_unknown_phase_is_a_user_error(adapter: JaxAdapter) -> None:
    with pytest.raises(DlbenchError, match="no phase 'pretrain9'"):
        adapter.build(make_request("autoencoder", "pretrain9"))


def test_unknown_pass_is_a_user_error(built: Callable[..., Shared]) -> None:
    with pytest.raises(DlbenchError, match="unknown pass"):
        built("autoencoder", "pretrain1").case.prepare("train_step")


def test_wrong_weight_shape_is_rejected(adapter: JaxAdapter) -> None:
    weights = dict(initial_weights("lenet"))
    weights["fc1.kernel"] = weights["fc1.kernel"].T
    with pytest.raises(ValueError, match="fc1.kernel"):
        adapter.build(make_request("lenet", weights=weights))


# ----------------------------------------------------------------------------------------------------
# Every workload and phase: canonical counts, shapes and names.
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("workload", "phase"), ALL_CASES)
def test_built_case_matches_the_canonical_workload(
    built: Callable[..., Shared], workload: str, phase: str
) -> None:
    spec = get_workload(workload)
    batch_size = batch_size_for(workload)
    shared = built(workload, phase, batch_size)
    case = shared.case
    assert case.trainable_params == spec.trainable_params(phase)

    output = shared.run("forward")
    assert isinstance(output, jax.Array)  # left on the device, not copied to the host
    if spec.phase(phase).output == "logits":
        assert output.shape == (batch_size, spec.num_classes)
    else:
        level = int(phase[-1])
        assert output.shape == (batch_size, spec.param(f"dec{level}.bias").shape[0])

    grads = shared.run("gradient")
    assert set(grads) == set(spec.phase(phase).trainable)
    for name, grad in grads.items():
        assert isinstance(grad, jax.Array)
        assert grad.shape == spec.param(name).shape
        assert np.all(np.isfinite(np.asarray(grad)))

    evaluation = case.evaluate()
    np.testing.assert_allclose(evaluation.output, np.asarray(output), rtol=1e-6, atol=1e-6)
    assert np.isfinite(evaluation.loss) and evaluation.loss > 0
    assert set(evaluation.gradients) == set(spec.phase(phase).trainable)
    for name, grad in evaluation.gradients.items():
        assert isinstance(grad, np.ndarray) and grad.dtype == np.float32
        assert grad.shape == spec.param(name).shape


def test_frozen_encoders_run_but_get_no_gradient(built: Callable[..., Shared]) -> None:
    """pretrain3's output depends on encoders 1-2 (they run), yet only enc3/dec3 receive gradients."""
    grads = built("autoencoder", "pretrain3", 3).run("gradient")
    assert set(grads) == {"enc3.kernel", "enc3.bias", "dec3.bias"}


# ----------------------------------------------------------------------------------------------------
# Numerical correctness against independent NumPy computations (float64).
# ----------------------------------------------------------------------------------------------------
def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def np_conv_valid(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """NHWC x HWIO valid convolution, stride 1, as an explicit sum over windows."""
    kh, kw = kernel.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # N, H', W', C, kh, kw
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel) + bias


def np_pool_2x2(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def np_lenet(p: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    x = np_pool_2x2(np.tanh(np_conv_valid(x, p["conv1.kernel"], p["conv1.bias"])))
    x = np_pool_2x2(np.tanh(np_conv_valid(x, p["conv2.kernel"], p["conv2.bias"])))
    x = x.reshape(x.shape[0], -1)
    x = np.maximum(x @ p["fc1.kernel"] + p["fc1.bias"], 0.0)
    return x @ p["fc2.kernel"] + p["fc2.bias"]


def np_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def np_encode(p: Mapping[str, np.ndarray], x: np.ndarray, levels: int) -> np.ndarray:
    for i in range(1, levels + 1):
        x = np_sigmoid(x @ p[f"enc{i}.kernel"] + p[f"enc{i}.bias"])
    return x


def np_lstm(p: Mapping[str, np.ndarray], tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    embedded = p["embedding.table"][tokens]
    n, steps, _ = embedded.shape
    hidden = p["lstm.recurrent_kernel"].shape[0]
    h, c = np.zeros((n, hidden)), np.zeros((n, hidden))
    pooled = np.zeros((n, hidden))
    for t in range(steps):
        z = embedded[:, t] @ p["lstm.input_kernel"] + h @ p["lstm.recurrent_kernel"] + p["lstm.bias"]
        i, f, g, o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
        c = np_sigmoid(f) * c + np_sigmoid(i) * np.tanh(g)
        h = np_sigmoid(o) * np.tanh(c)
        pooled += h * (t < lengths)[:, None]
    pooled /= lengths[:, None]
    return pooled @ p["classifier.kernel"] + p["classifier.bias"]


def float64(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v.astype(np.float64) for k, v in weights.items()}


@pytest.mark.parametrize("variant", ["jit", "jit_reduce_window"])
def test_lenet_forward_matches_numpy(adapter: JaxAdapter, variant: str) -> None:
    weights = with_random_biases("lenet")
    batch = make_batch("lenet", 2)
    case = adapter.build(make_request("lenet", weights=weights, batch=batch, variant=variant))
    try:
        logits = np.asarray(run(case, "forward"))
        expected = np_lenet(float64(weights), batch.x.astype(np.float64))
        np.testing.assert_allclose(logits, expected, rtol=FORWARD_RTOL, atol=FORWARD_ATOL)
        assert case.evaluate().loss == pytest.approx(np_cross_entropy(expected, batch.y), rel=1e-5)
    finally:
        case.close()


@pytest.mark.parametrize("phase", ["pretrain1", "pretrain2", "pretrain3", "finetune"])
def test_autoencoder_forward_and_loss_match_numpy(adapter: JaxAdapter, phase: str) -> None:
    weights = with_random_biases("autoencoder")
    batch = make_batch("autoencoder", 3)
    p, x = float64(weights), batch.x.astype(np.float64)
    if phase == "finetune":
        expected = np_encode(p, x, 3) @ p["classifier.kernel"] + p["classifier.bias"]
        expected_loss = np_cross_entropy(expected, batch.y)
    else:
        level = int(phase[-1])
        target = np_encode(p, x, level - 1)
        hidden = np_sigmoid(target @ p[f"enc{level}.kernel"] + p[f"enc{level}.bias"])
        expected = np_sigmoid(hidden @ p[f"enc{level}.kernel"].T + p[f"dec{level}.bias"])
        expected_loss = float(np.sum((expected - target) ** 2) / (2 * len(x)))
    case = adapter.build(make_request("autoencoder", phase, weights=weights, batch=batch))
    try:
        evaluation = case.evaluate()
        np.testing.assert_allclose(evaluation.output, expected, rtol=FORWARD_RTOL, atol=FORWARD_ATOL)
        assert evaluation.loss == pytest.approx(expected_loss, rel=1e-5)
    finally:
        case.close()


def test_autoencoder_pretrain1_gradient_matches_hand_derivation(adapter: JaxAdapter) -> None:
    """Backpropagation through the tied decoder by hand: W1 receives both the encoder's and the
    decoder's contribution."""
    weights = with_random_biases("autoencoder")
    batch = make_batch("autoencoder", 3)
    p, x = float64(weights), batch.x.astype(np.float64)
    w, n = p["enc1.kernel"], len(x)
    h = np_sigmoid(x @ w + p["enc1.bias"])
    r = np_sigmoid(h @ w.T + p["dec1.bias"])
    dz2 = (r - x) / n * r * (1 - r)
    dz1 = (dz2 @ w) * h * (1 - h)
    expected = {"enc1.kernel": x.T @ dz1 + dz2.T @ h, "enc1.bias": dz1.sum(0), "dec1.bias": dz2.sum(0)}
    case = adapter.build(make_request("autoencoder", "pretrain1", weights=weights, batch=batch))
    try:
        grads = to_numpy(run(case, "gradient"))
        assert set(grads) == set(expected)
        for name, value in expected.items():
            np.testing.assert_allclose(grads[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
    finally:
        case.close()


def test_lstm_forward_matches_a_numpy_loop(adapter: JaxAdapter) -> None:
    """Lengths chosen to include very short sequences, so the masked mean is really exercised."""
    weights = with_random_biases("lstm")
    lengths = np.array([100, 37, 5, 64], dtype=np.int32)
    rng = np.random.default_rng(3)
    tokens = rng.integers(1, 10_000, size=(4, 100)).astype(np.int32)
    tokens[np.arange(100)[None, :] >= lengths[:, None]] = 0
    batch = Batch(tokens, np.array([0, 1, 1, 0], dtype=np.int32), lengths)
    case = adapter.build(make_request("lstm", weights=weights, batch=batch))
    try:
        expected = np_lstm(float64(weights), tokens, lengths)
        logits = np.asarray(run(case, "forward"))
        np.testing.assert_allclose(logits, expected, rtol=FORWARD_RTOL, atol=FORWARD_ATOL)
        assert case.evaluate().loss == pytest.approx(np_cross_entropy(expected, batch.y), rel=1e-5)
    finally:
        case.close()


# ----------------------------------------------------------------------------------------------------
# Variants, dropout, counters, release.
# ----------------------------------------------------------------------------------------------------
def test_variants_compute_the_same_numbers(built: Callable[..., Shared]) -> None:
    reshape_pool, window_pool = built("lenet", "", 2, "jit"), built("lenet", "", 2, "jit_reduce_window")
    forward_a, forward_b = np.asarray(reshape_pool.run("forward")), np.asarray(window_pool.run("forward"))
    np.testing.assert_allclose(forward_a, forward_b, rtol=1e-5, atol=1e-6)
    grads_a, grads_b = to_numpy(reshape_pool.run("gradient")), to_numpy(window_pool.run("gradient"))
    assert set(grads_a) == set(grads_b)
    for name in grads_a:
        np.testing.assert_allclose(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_dropout_only_in_the_gradient_pass_and_only_when_asked(built: Callable[..., Shared]) -> None:
    with_dropout, without = built("lstm", "", 3, dropout=True), built("lstm", "", 3, dropout=False)
    first, second = to_numpy(with_dropout.run("gradient")), to_numpy(with_dropout.run("gradient"))
    np.testing.assert_array_equal(first["classifier.kernel"], second["classifier.kernel"])  # fixed key: pure
    reference = without.case.evaluate().gradients  # evaluate never drops out
    np.testing.assert_allclose(
        to_numpy(without.run("gradient"))["classifier.kernel"], reference["classifier.kernel"], rtol=1e-5
    )
    assert not np.allclose(first["classifier.kernel"], reference["classifier.kernel"], rtol=1e-3)
    np.testing.assert_allclose(  # ... and the forward pass is inference in both
        np.asarray(with_dropout.run("forward")), np.asarray(without.run("forward")), rtol=1e-6
    )


def test_cost_analysis_flops_are_sane_for_lenet(built: Callable[..., Shared]) -> None:
    case = built("lenet", "", 2).case
    flops = case.framework_flops("forward")
    expected = forward_flops("lenet", "", 2)
    assert flops is not None and 0.5 * expected <= flops <= 3 * expected
    gradient_flops = case.framework_flops("gradient")
    assert gradient_flops is not None and gradient_flops > flops


def test_loop_flops_are_not_reported(built: Callable[..., Shared]) -> None:
    """XLA counts a while loop's body once; an LSTM count would be ~100x too low for the recurrence."""
    case = built("lstm", "", 3).case
    assert case.framework_flops("forward") is None
    assert case.framework_flops("gradient") is None


def test_dropout_random_bits_do_not_hide_the_flops(built: Callable[..., Shared]) -> None:
    """The threefry generator behind dropout compiles to while loops too, but integer ones: AlexNet's
    gradient pass (with dropout) still gets a count, near the 3x-forward estimate."""
    flops = built("alexnet", "", 1).case.framework_flops("gradient")
    estimate = pass_flops("alexnet", "", "gradient", 1)
    assert flops is not None and 0.5 * estimate <= flops <= 2 * estimate


def test_cpu_memory_analysis_covers_parameters_and_gradients(built: Callable[..., Shared]) -> None:
    case = built("lenet", "", 2).case
    param_bytes = 4 * get_workload("lenet").total_params()
    forward, gradient = case.peak_memory_bytes("forward"), case.peak_memory_bytes("gradient")
    assert forward is not None and forward >= param_bytes
    assert gradient is not None and gradient >= 2 * param_bytes  # parameters in, gradients out


def test_close_releases_the_device_buffers(adapter: JaxAdapter) -> None:
    case = adapter.build(make_request("autoencoder", "pretrain1"))
    forward = case.prepare("forward")
    case.sync(forward())
    case.close()
    with pytest.raises(Exception, match="(?i)deleted"):
        case.sync(forward())
