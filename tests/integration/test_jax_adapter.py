"""The JAX adapter against the canonical workloads, and against the float64 NumPy reference.

The reference (:mod:`dlbench.verify.reference`) is written from workloads.md, not from the adapter: if the
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
from dlbench.frameworks.base import BuildRequest, BuiltCase, CaseUnavailable, ContractError  # noqa: E402
from dlbench.frameworks.jax.adapter import JaxAdapter  # noqa: E402
from dlbench.workloads import Batch, get_workload, initial_weights, make_batch  # noqa: E402
from dlbench.workloads.registry import forward_flops, pass_flops  # noqa: E402
from tests.numpy_models import ALL_CASES, masked_lstm_batch, reference, with_random_biases  # noqa: E402

pytestmark = pytest.mark.integration

FORWARD_RTOL, FORWARD_ATOL = 1e-4, 1e-5  # float32 network vs float64 NumPy
LOSS_RTOL = 1e-5  # a scalar: the float32 budget of dlbench.verify.tolerances (1e-5 for every workload)


def batch_size_for(workload: str) -> int:
    return 1 if workload == "alexnet" else 3


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
    code = "import sys, dlbench.frameworks.jax.adapter; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_metadata() -> None:
    adapter = JaxAdapter()
    assert (adapter.name, adapter.display_name, adapter.module) == ("jax", "JAX", "jax")
    assert adapter.default_variant in adapter.variants
    assert set(adapter.variants) == set(adapter.variant_help) == {
        "jit", "jit_reduce_window", "plain_attention", "no_ynnpack_conv", "no_autotune", "deterministic"}
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


def test_gpu_only_precisions_are_unavailable_on_cpu_and_unknown_ones_are_errors(adapter: JaxAdapter) -> None:
    with pytest.raises(CaseUnavailable, match="GPU"):
        adapter.build(make_request("lenet", precision="tf32"))
    with pytest.raises(DlbenchError, match="unknown precision 'bfloat16'"):
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
    with pytest.raises(ContractError, match="fc1.kernel"):
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
# Numerical correctness against the float64 NumPy reference.
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["jit", "jit_reduce_window"])
def test_lenet_forward_matches_reference(adapter: JaxAdapter, variant: str) -> None:
    weights = with_random_biases("lenet")
    batch = make_batch("lenet", 2)
    case = adapter.build(make_request("lenet", weights=weights, batch=batch, variant=variant))
    try:
        logits = np.asarray(run(case, "forward"))
        expected = reference("lenet", "", batch, weights, gradients=False)
        np.testing.assert_allclose(logits, expected.output, rtol=FORWARD_RTOL, atol=FORWARD_ATOL)
        assert case.evaluate().loss == pytest.approx(expected.loss, rel=LOSS_RTOL)
    finally:
        case.close()


@pytest.mark.parametrize("phase", ["pretrain1", "pretrain2", "pretrain3", "finetune"])
def test_autoencoder_matches_reference(adapter: JaxAdapter, phase: str) -> None:
    """Output, loss and the gradient pass's gradients. In the pretraining phases the tied kernel must
    receive both the encoder's and the decoder's contribution, and the frozen encoders none."""
    weights = with_random_biases("autoencoder")
    batch = make_batch("autoencoder", 3)
    expected = reference("autoencoder", phase, batch, weights)
    case = adapter.build(make_request("autoencoder", phase, weights=weights, batch=batch))
    try:
        evaluation = case.evaluate()
        np.testing.assert_allclose(evaluation.output, expected.output, rtol=FORWARD_RTOL, atol=FORWARD_ATOL)
        assert evaluation.loss == pytest.approx(expected.loss, rel=LOSS_RTOL)
        grads = to_numpy(run(case, "gradient"))
        assert set(grads) == set(expected.gradients)
        for name, value in expected.gradients.items():
            np.testing.assert_allclose(grads[name], value, rtol=1e-4, atol=1e-6, err_msg=name)
    finally:
        case.close()


def test_lstm_forward_matches_reference(adapter: JaxAdapter) -> None:
    """Lengths chosen to include very short sequences, so the masked mean is really exercised."""
    weights = with_random_biases("lstm")
    batch = masked_lstm_batch(lengths=[100, 37, 5, 64], labels=[0, 1, 1, 0], seed=3)
    case = adapter.build(make_request("lstm", weights=weights, batch=batch))
    try:
        expected = reference("lstm", "", batch, weights, gradients=False)
        logits = np.asarray(run(case, "forward"))
        np.testing.assert_allclose(logits, expected.output, rtol=FORWARD_RTOL, atol=FORWARD_ATOL)
        assert case.evaluate().loss == pytest.approx(expected.loss, rel=LOSS_RTOL)
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
