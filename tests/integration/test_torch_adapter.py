"""The PyTorch adapter against the canonical definitions and against the float64 NumPy reference.

The reference (:mod:`dlbench.verify.reference`) computes ``workloads.md`` directly (NHWC, canonical weight
layout, float64), so a layout mistake in the adapter (kernel transposition, fc1/fc6 row order, LSTM gate
order, tied decoder) shows up as a numerical mismatch. Weights are randomised, biases included: with the
canonical zero biases a misplaced bias would go unnoticed.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlbench.errors import DlbenchError  # noqa: E402
from dlbench.frameworks.base import BuildRequest, CaseUnavailable, Evaluation  # noqa: E402
from dlbench.frameworks.registry import get_adapter  # noqa: E402
from dlbench.frameworks.torch.adapter import TorchAdapter  # noqa: E402
from dlbench.frameworks.torch.case import TorchCase  # noqa: E402
from dlbench.workloads import Batch, get_workload, initial_weights, make_batch  # noqa: E402
from dlbench.workloads.registry import forward_flops  # noqa: E402
from tests.numpy_models import (  # noqa: E402
    ALL_CASES,
    beyond_ties,
    masked_lstm_batch,
    near_tie_allowance,
    reference,
    with_random_biases,
)

pytestmark = pytest.mark.integration

VARIANTS = ("eager", "channels_last")
LOSS_RTOL = 1e-5  # a scalar: the float32 budget of dlbench.verify.tolerances (1e-5 for every workload)
ADAPTER = TorchAdapter()


def batch_size(workload: str) -> int:
    return 1 if workload == "alexnet" else 3


@functools.cache
def canonical_weights(workload: str) -> dict[str, np.ndarray]:
    return initial_weights(workload)


def build(
    workload: str,
    phase: str = "",
    variant: str = "channels_last",
    weights: dict[str, np.ndarray] | None = None,
    batch: Batch | None = None,
    dropout: bool = False,
) -> TorchCase:
    spec = get_workload(workload)
    request = BuildRequest(
        workload=spec,
        phase=phase,
        batch=batch if batch is not None else make_batch(workload, batch_size(workload)),
        weights=weights if weights is not None else canonical_weights(workload),
        variant=variant,
        device="cpu",
        dropout=dropout,
    )
    return ADAPTER.build(request)


def lstm_batch() -> Batch:
    """Three sequences of very different lengths, so that the mask matters."""
    return masked_lstm_batch(lengths=[100, 37, 5], labels=[0, 1, 1], seed=7)


def evaluate(
    workload: str, phase: str, variant: str, weights: dict[str, np.ndarray], batch: Batch
) -> Evaluation:
    case = build(workload, phase, variant, weights, batch)
    try:
        return case.evaluate()
    finally:
        case.close()


# ----------------------------------------------------------------------------------------------------
# The float64 NumPy reference (dlbench.verify.reference) as a function of the weights
# ----------------------------------------------------------------------------------------------------
def as64(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """float64 copies, so that a finite-difference step of 1e-4 is not rounded to float32's grid."""
    return {k: v.astype(np.float64) for k, v in weights.items()}


def reference_loss(workload: str, phase: str, batch: Batch) -> Callable[[dict[str, np.ndarray]], float]:
    return lambda weights: reference(workload, phase, batch, weights, gradients=False).loss


def finite_difference(loss, weights: dict[str, np.ndarray], name: str, index: tuple[int, ...]) -> float:
    eps = 1e-4
    plus, minus = dict(weights), dict(weights)
    plus[name] = weights[name].copy()
    minus[name] = weights[name].copy()
    plus[name][index] += eps
    minus[name][index] -= eps
    return (loss(plus) - loss(minus)) / (2 * eps)


def check_gradient_entries(grad: np.ndarray, loss, weights: dict[str, np.ndarray], name: str) -> None:
    """Compare the adapter's canonical-layout gradient with central differences of the reference loss at the
    largest entry and two fixed ones: a layout error moves the large entries to the wrong index."""
    flat_largest = int(np.abs(grad).argmax())
    indices = {np.unravel_index(flat_largest, grad.shape), np.unravel_index(grad.size // 3, grad.shape),
               np.unravel_index(grad.size - 1, grad.shape)}
    scale = float(np.abs(grad).max())
    assert scale > 0
    for index in indices:
        expected = finite_difference(loss, weights, name, tuple(int(i) for i in index))
        assert abs(grad[index] - expected) <= 2e-3 * scale, (name, index, grad[index], expected)


# ----------------------------------------------------------------------------------------------------
# Structure: counts, shapes, names
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("workload", "phase"), ALL_CASES)
def test_build_passes_and_evaluate_shapes(workload: str, phase: str, variant: str) -> None:
    spec = get_workload(workload)
    n = batch_size(workload)
    case = build(workload, phase, variant)
    try:
        assert case.trainable_params == spec.trainable_params(phase)

        out = case.prepare("forward")()
        expected_out = (n, spec.num_classes) if spec.phase(phase).output == "logits" else None
        if expected_out is None:  # reconstruction of the stage's input
            stage_inputs = {"pretrain1": 784, "pretrain2": 400, "pretrain3": 200}
            expected_out = (n, stage_inputs[phase])
        assert tuple(out.shape) == expected_out
        assert not out.requires_grad

        grads = case.prepare("gradient")()
        trainable = spec.phase(phase).trainable
        assert len(grads) == len(trainable)
        for g, name in zip(grads, trainable, strict=True):
            canonical = spec.param(name).shape
            assert g.numel() == spec.param(name).size and g.dim() == len(canonical), name
            assert torch.isfinite(g).all()

        result = case.evaluate()
        assert set(result.gradients) == set(trainable)
        for name, g in result.gradients.items():
            assert g.shape == spec.param(name).shape, name
        assert result.output.shape == expected_out
        assert np.isfinite(result.loss)
    finally:
        case.close()


@pytest.mark.parametrize(("workload", "phase"), ALL_CASES)
def test_variants_agree(workload: str, phase: str) -> None:
    weights = with_random_biases(workload)
    batch = lstm_batch() if workload == "lstm" else make_batch(workload, batch_size(workload))
    a = evaluate(workload, phase, "eager", weights, batch)
    b = evaluate(workload, phase, "channels_last", weights, batch)
    np.testing.assert_allclose(a.output, b.output, rtol=1e-4, atol=1e-5)
    assert a.loss == pytest.approx(b.loss, rel=1e-5, abs=1e-6)
    ties = near_tie_allowance(workload, batch_size(workload)) if workload in ("lenet", "alexnet") else {}
    for name, grad in a.gradients.items():
        scale = float(np.abs(grad).max()) or 1.0
        excess = float(beyond_ties(grad, b.gradients[name], ties.get(name)).max())
        assert excess <= 1e-4 * scale, f"{name}: eager and channels_last differ by {excess:.2e} beyond near-ties"


# ----------------------------------------------------------------------------------------------------
# Numerical correctness against the float64 NumPy reference
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_lenet_matches_reference(variant: str) -> None:
    weights = with_random_biases("lenet")
    batch = make_batch("lenet", 3)
    result = evaluate("lenet", "", variant, weights, batch)
    expected = reference("lenet", "", batch, weights, gradients=False)
    np.testing.assert_allclose(result.output, expected.output, rtol=1e-4, atol=1e-4)
    assert result.loss == pytest.approx(expected.loss, rel=LOSS_RTOL)


@pytest.mark.parametrize("variant", VARIANTS)
def test_lenet_gradient_matches_finite_differences(variant: str) -> None:
    weights = with_random_biases("lenet")
    batch = make_batch("lenet", 2)
    result = evaluate("lenet", "", variant, weights, batch)
    loss = reference_loss("lenet", "", batch)
    w64 = as64(weights)
    for name in ("conv1.kernel", "fc1.kernel", "fc2.bias"):  # fc1: the permuted flatten rows
        check_gradient_entries(result.gradients[name], loss, w64, name)


def test_alexnet_matches_reference() -> None:
    weights = with_random_biases("alexnet")
    batch = make_batch("alexnet", 1)
    logits = reference("alexnet", "", batch, weights, gradients=False).output
    for variant in VARIANTS:
        result = evaluate("alexnet", "", variant, weights, batch)
        np.testing.assert_allclose(result.output, logits, rtol=1e-3, atol=1e-3 * np.abs(logits).max())


@pytest.mark.parametrize("phase", ["pretrain1", "pretrain2", "pretrain3", "finetune"])
def test_autoencoder_matches_reference(phase: str) -> None:
    weights = with_random_biases("autoencoder")
    batch = make_batch("autoencoder", 3)
    result = evaluate("autoencoder", phase, "channels_last", weights, batch)
    expected = reference("autoencoder", phase, batch, weights, gradients=False)
    np.testing.assert_allclose(result.output, expected.output, rtol=1e-4, atol=1e-5)
    assert result.loss == pytest.approx(expected.loss, rel=LOSS_RTOL)

    # The tied kernel gets encoder and decoder gradient; a frozen-encoder phase must not differentiate them.
    kernel = "enc1.kernel" if phase in ("pretrain1", "finetune") else f"enc{phase[-1]}.kernel"
    check_gradient_entries(result.gradients[kernel], reference_loss("autoencoder", phase, batch), as64(weights),
                           kernel)


def test_lstm_matches_reference() -> None:
    weights = with_random_biases("lstm")
    batch = lstm_batch()
    result = evaluate("lstm", "", "channels_last", weights, batch)
    expected = reference("lstm", "", batch, weights, gradients=False)
    np.testing.assert_allclose(result.output, expected.output, rtol=1e-4, atol=1e-5)
    assert result.loss == pytest.approx(expected.loss, rel=LOSS_RTOL)

    loss, w64 = reference_loss("lstm", "", batch), as64(weights)
    for name in ("lstm.input_kernel", "lstm.bias"):
        check_gradient_entries(result.gradients[name], loss, w64, name)


# ----------------------------------------------------------------------------------------------------
# Passes: dropout, inference mode, FLOPs
# ----------------------------------------------------------------------------------------------------
def test_dropout_only_in_gradient_pass() -> None:
    weights = with_random_biases("lstm")
    batch = lstm_batch()
    with_dropout = build("lstm", weights=weights, batch=batch, dropout=True)
    without = build("lstm", weights=weights, batch=batch, dropout=False)
    try:
        forward = with_dropout.prepare("forward")
        assert torch.equal(forward(), forward())  # eval mode: deterministic
        assert torch.equal(forward(), without.prepare("forward")())

        # classifier weight is the second-to-last trainable parameter ([out, in] in PyTorch)
        ref = without.prepare("gradient")()[-2]
        assert torch.allclose(ref, without.prepare("gradient")()[-2])
        gradient = with_dropout.prepare("gradient")
        draws = [gradient()[-2] for _ in range(3)]
        assert not all(torch.allclose(d, ref) for d in draws)
        # evaluate() forces dropout off even when the request asked for it
        assert np.allclose(with_dropout.evaluate().gradients["classifier.kernel"], ref.numpy().T, atol=1e-6)
    finally:
        with_dropout.close()
        without.close()


@pytest.mark.parametrize("workload", ["lenet", "alexnet"])
def test_variants_use_the_memory_format_they_name(workload: str) -> None:
    """Peeks inside on purpose: a 1-channel NHWC batch permuted to NCHW already has channels_last
    strides, so a careless ``contiguous()`` would make ``eager`` silently run channels_last."""
    for variant, fmt in (("eager", torch.contiguous_format), ("channels_last", torch.channels_last)):
        case = build(workload, variant=variant)
        try:
            state = case._live()
            assert state.inputs.x.is_contiguous(memory_format=fmt), variant
            conv1 = state.net.layers.get_submodule("conv1")
            assert conv1.weight.is_contiguous(memory_format=fmt), variant
            with torch.inference_mode():
                assert conv1(state.inputs.x).is_contiguous(memory_format=fmt), variant
        finally:
            case.close()


@pytest.mark.parametrize(("workload", "phase"), [("lenet", ""), ("autoencoder", "pretrain2")])
def test_framework_flops_match_canonical_count(workload: str, phase: str) -> None:
    case = build(workload, phase)
    try:
        forward = case.framework_flops("forward")
        assert forward == forward_flops(workload, phase, batch_size(workload))
        gradient = case.framework_flops("gradient")
        assert gradient is not None and gradient > forward
    finally:
        case.close()


def test_lstm_flops_are_withheld_not_wrong() -> None:
    case = build("lstm")
    try:
        assert case.framework_flops("forward") is None
    finally:
        case.close()


def test_closed_case_refuses_work() -> None:
    case = build("autoencoder", "pretrain3")
    case.close()
    with pytest.raises(RuntimeError, match="closed"):
        case.prepare("forward")


def test_compile_variant_matches_eager() -> None:
    """Slowest test here (inductor compiles C++): the cheapest workload only."""
    weights = with_random_biases("autoencoder")
    batch = make_batch("autoencoder", 2)
    reference = evaluate("autoencoder", "pretrain1", "eager", weights, batch)
    case = build("autoencoder", "pretrain1", "compile", weights, batch)
    try:
        out = case.prepare("forward")()
        np.testing.assert_allclose(out.numpy(), reference.output, rtol=1e-5, atol=1e-6)
        grads = case.prepare("gradient")()
        enc1 = reference.gradients["enc1.kernel"]
        np.testing.assert_allclose(grads[0].numpy().T, enc1, rtol=1e-4, atol=1e-6)
        result = case.evaluate()
        assert result.loss == pytest.approx(reference.loss, rel=1e-5)
    finally:
        case.close()


# ----------------------------------------------------------------------------------------------------
# Requests the adapter must refuse, and the adapter's own metadata
# ----------------------------------------------------------------------------------------------------
def test_bad_requests() -> None:
    spec = get_workload("lenet")
    base = dict(workload=spec, phase="", batch=make_batch("lenet", 1), weights=canonical_weights("lenet"),
                variant="eager", device="cpu")
    with pytest.raises(DlbenchError, match="variant"):
        ADAPTER.build(BuildRequest(**{**base, "variant": "xla"}))
    with pytest.raises(CaseUnavailable, match="GPU"):
        ADAPTER.build(BuildRequest(**{**base, "precision": "tf32"}))
    with pytest.raises(DlbenchError, match="unknown precision"):
        ADAPTER.build(BuildRequest(**{**base, "precision": "float16"}))
    with pytest.raises(DlbenchError, match="phase"):
        ADAPTER.build(BuildRequest(**{**base, "phase": "pretrain1"}))
    weights = dict(base["weights"])
    weights["fc1.kernel"] = weights["fc1.kernel"].T  # wrong layout must not load silently
    with pytest.raises(RuntimeError, match="fc1.kernel"):
        ADAPTER.build(BuildRequest(**{**base, "weights": weights}))
    case = build("lenet")
    try:
        with pytest.raises(DlbenchError, match="pass"):
            case.prepare("backward")
    finally:
        case.close()


def test_initialize_reports_what_is_in_effect() -> None:
    before = torch.get_num_threads()
    try:
        info = ADAPTER.initialize("cpu", 2)
        assert info.framework == "torch"
        assert info.version == torch.__version__
        assert info.threads == 2 == torch.get_num_threads()
        assert "cpu" in info.devices
        assert info.settings["tf32"] == "off"
        assert torch.backends.cuda.matmul.allow_tf32 is False
        if torch.backends.mkldnn.is_available():
            assert info.backends["onednn"]
    finally:
        torch.set_num_threads(before)
    with pytest.raises(DlbenchError):
        ADAPTER.initialize("tpu", 1)
    with pytest.raises(DlbenchError):
        ADAPTER.initialize("cpu", 0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_initialize_gpu_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        ADAPTER.initialize("gpu", 1)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.13.0+cpu", False),
        ("2.1.0+cpu.cxx11.abi", False),
        ("2.13.0", True),
        ("2.13.0+cu124", True),
        (None, False),
    ],
)
def test_supports_gpu_build(monkeypatch: pytest.MonkeyPatch, version: str | None, expected: bool) -> None:
    adapter = TorchAdapter()
    monkeypatch.setattr(adapter, "version", lambda: version)
    assert adapter.supports_gpu_build() is expected


def test_registered_and_import_is_light() -> None:
    adapter = get_adapter("torch")
    assert isinstance(adapter, TorchAdapter)
    assert adapter.default_variant in adapter.variants
    assert set(adapter.variant_help) == set(adapter.variants)
    code = "import sys, dlbench.frameworks.torch.adapter; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
