"""Integration tests of PyTorch's convolution algorithms (``--conv``: native, im2col, fft, direct) and of the
PyTorch library-switch variants (``no_onednn`` on a CPU; ``cudnn_benchmark`` and ``deterministic`` on a GPU,
whose logic is tested here without one).

Errors are normwise, relative to the compared tensor's largest magnitude (:func:`scaled_error`), as
``dlbench verify`` measures them. Tolerances and why:

* Small shapes, float64: :data:`F64_TOL` = 1e-12. In float64 every algorithm must equal ``F.conv2d`` to
  rounding (measured at most 1.5e-15): this proves the algorithm exact, whatever its float32 noise.
* Small shapes, float32: :data:`F32_TOL` = 1e-5. The algorithms sum the same products in another order (fft:
  through transforms whose rounding is O(eps log HW)); measured at most 5.6e-7, so 1e-5 leaves an 18x margin
  and stays far below the error of a wrong algorithm (the mutation tests: at least 0.9).
* Through the adapter (LeNet, AlexNet, every layer benchmark) against native's evaluation: the float32
  budgets of ``dlbench verify`` (:func:`dlbench.verify.tolerances.tolerance_for`: LeNet and its layers 1e-5
  outputs / 3e-5 gradients, AlexNet and its layers 3e-5 / 5e-5). Measured on the layers (batch 4) at most
  5.2e-6 (AlexNet conv1's kernel gradient, im2col; fft 4.9e-6, direct 2.6e-6) and 3.9e-6 for an input
  gradient (conv4, every algorithm); on the networks 1.7e-6, as much as ``eager`` native differs from
  ``channels_last`` native. The random biases of ``tests.numpy_models`` are used, as in the adapter tests:
  with the canonical zero biases AlexNet has near-ties of ReLU/max-pool decisions (1e-2 on one channel of the
  conv1 kernel gradient for every algorithm and for native eager against native channels_last alike), which
  verify handles with its tie analysis and which would say nothing about the algorithms.
* bf16 (one layer per algorithm, AlexNet conv2): each tensor's error against float32 native must stay within
  :data:`BF16_FACTOR` = 2 times native bf16's own error against float32 native. Measured (batch 4, every
  layer): native 2.1e-3 to 5.5e-3, the algorithms at most 1.4x native's (im2col's input gradient on AlexNet
  conv5: each patch gradient is rounded to bf16 by its GEMM before col2im sums the k*k of them; direct's
  output on conv3, 1.2x: each of its k*k products is rounded likewise).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from dlbench.frameworks.base import BuildRequest, CaseUnavailable, Evaluation  # noqa: E402
from dlbench.frameworks.torch import convolution  # noqa: E402
from dlbench.frameworks.torch.adapter import TorchAdapter  # noqa: E402
from dlbench.frameworks.torch.case import TorchCase  # noqa: E402
from dlbench.frameworks.torch.convolution import conv2d  # noqa: E402
from dlbench.frameworks.torch.switches import (  # noqa: E402
    CONV_WORKLOADS,
    Switches,
    apply_switches,
    read_switches,
    variant_switches,
)
from dlbench.verify.tolerances import tolerance_for  # noqa: E402
from dlbench.workloads import LAYER_WORKLOADS, get_workload, make_batch  # noqa: E402
from dlbench.workloads.registry import forward_flops  # noqa: E402
from tests.numpy_models import beyond_ties, near_tie_allowance, reference, with_random_biases  # noqa: E402

pytestmark = pytest.mark.integration

ALGORITHMS = ("im2col", "fft", "direct")
ALL_ALGORITHMS = ("native", *ALGORITHMS)
LAYOUTS = ("channels_last", "eager")  # the two memory layouts the algorithms follow
F64_TOL = 1e-12
F32_TOL = 1e-5
BF16_FACTOR = 2.0
ADAPTER = TorchAdapter()
# (batch, Cin, Cout, H, W, k, stride, padding): odd and unequal sizes, strides 1/2/4, paddings 0-2, kernels 1-11
SHAPES = [
    (2, 3, 4, 7, 9, 3, 1, 1),
    (2, 2, 5, 11, 8, 5, 2, 2),
    (3, 3, 2, 5, 5, 1, 1, 0),
    (2, 5, 3, 9, 7, 3, 2, 0),
    (1, 2, 3, 9, 9, 5, 1, 0),
    (2, 3, 4, 13, 15, 3, 1, 2),
    (2, 3, 4, 23, 27, 11, 4, 0),  # AlexNet conv1's kernel and stride on a small map
    (2, 4, 2, 10, 12, 5, 4, 1),
]
EXPECTED_BACKEND = {  # the conv_backend trait of each algorithm in each layout, float32 on a CPU
    ("channels_last", "native"): "Mkldnn",
    ("channels_last", "im2col"): "aten.addmm",
    ("channels_last", "direct"): "aten.addmm",
    ("channels_last", "fft"): "aten.fft_rfft2+aten.einsum+aten.fft_irfft2",
    ("eager", "native"): "Mkldnn",
    ("eager", "im2col"): "aten.baddbmm",
    ("eager", "direct"): "aten.baddbmm",
    ("eager", "fft"): "aten.fft_rfft2+aten.einsum+aten.fft_irfft2",
    ("no_onednn", "native"): "Slow2d",
}


def scaled_error(a: Any, b: Any, ties: np.ndarray | None = None) -> float:
    """The largest difference over the larger magnitude; with ``ties``, beyond both sides' near-ties."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(float(np.abs(a).max()), float(np.abs(b).max())) or 1.0
    return float(beyond_ties(a, b, ties).max()) / scale


def assert_close(got: dict[str, Any], want: dict[str, Any], tol: float | dict[str, float], what: str,
                 ties: dict[str, np.ndarray] | None = None) -> None:
    """Scaled errors within ``tol``; with ``ties`` (a reference's allowances), beyond its near-ties only."""
    for name, value in want.items():
        limit = tol[name] if isinstance(tol, dict) else tol
        error = scaled_error(got[name], value, (ties or {}).get(name))
        assert error <= limit, f"{what}: {name} off by {error:.2e} (tolerance {limit:.0e})"


# ----------------------------------------------------------------------------------------------------
# The algorithms on small shapes, against F.conv2d: forward, input, kernel and bias gradients
# ----------------------------------------------------------------------------------------------------
Conv = Callable[..., Any]


def conv_results(conv: Conv, shape: tuple[int, ...], layout: str, dtype: Any) -> dict[str, np.ndarray]:
    n, cin, cout, h, w, k, stride, padding = shape
    gen = torch.Generator().manual_seed(sum(shape))
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x = torch.randn(n, cin, h, w, generator=gen, dtype=dtype).contiguous(memory_format=fmt).requires_grad_()
    weight = torch.randn(cout, cin, k, k, generator=gen, dtype=dtype).contiguous(memory_format=fmt)
    weight.requires_grad_()
    bias = torch.randn(cout, generator=gen, dtype=dtype).requires_grad_()
    y = conv(x, weight, bias, stride, padding)
    upstream = torch.randn(y.shape, generator=gen, dtype=dtype)
    dx, dw, db = torch.autograd.grad(y, (x, weight, bias), upstream)
    return {"y": y.detach().numpy(), "dx": dx.numpy(), "dW": dw.numpy(), "db": db.numpy()}


def native(x: Any, weight: Any, bias: Any, stride: int, padding: int) -> Any:
    return F.conv2d(x, weight, bias, stride, padding)


def algorithm(name: str, layout: str) -> Conv:
    return lambda x, w, b, s, p: conv2d(x, w, b, s, p, name, layout == "channels_last")


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "n{}c{}o{}_{}x{}_k{}s{}p{}".format(*s))
def test_algorithm_equals_native_on_small_shapes(shape: tuple[int, ...], name: str, layout: str) -> None:
    for dtype, tol in ((torch.float64, F64_TOL), (torch.float32, F32_TOL)):
        got = conv_results(algorithm(name, layout), shape, layout, dtype)
        want = conv_results(native, shape, layout, dtype)
        assert_close(got, want, tol, f"{name} {layout} {dtype}")


def test_algorithms_keep_the_memory_layout_of_the_input() -> None:
    for layout, fmt in (("channels_last", torch.channels_last), ("eager", torch.contiguous_format)):
        x = torch.randn(2, 3, 9, 9).contiguous(memory_format=fmt)
        w = torch.randn(4, 3, 3, 3).contiguous(memory_format=fmt)
        for name in ALGORITHMS:
            assert conv2d(x, w, None, 1, 1, name, layout == "channels_last").is_contiguous(memory_format=fmt)


# The mutants: a deliberately wrong convolution (a flipped kernel: convolution instead of cross-correlation;
# the input shifted by one pixel: padding off by one on each side). The same comparison must fail.
def flipped(conv: Conv) -> Conv:
    return lambda x, w, b, s, p: conv(x, w.flip(-2, -1), b, s, p)


def shifted(conv: Conv) -> Conv:
    return lambda x, w, b, s, p: conv(F.pad(x, (1, -1, 1, -1)), w, b, s, p)


MUTANTS = {"flipped_kernel": flipped, "padding_off_by_one": shifted}


@pytest.mark.parametrize("mutant", MUTANTS)
@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_wrong_algorithm_fails_the_same_comparison(name: str, mutant: str) -> None:
    for shape in (SHAPES[0], SHAPES[1], SHAPES[6]):  # k 3, 5, 11; strides 1, 2, 4; paddings 1, 2, 0
        want = conv_results(native, shape, "channels_last", torch.float32)
        got = conv_results(MUTANTS[mutant](algorithm(name, "channels_last")), shape, "channels_last", torch.float32)
        with pytest.raises(AssertionError, match="off by"):
            assert_close(got, want, F32_TOL, f"{name} {mutant}")
        assert scaled_error(got["y"], want["y"]) > 1e4 * F32_TOL  # an O(1) error, not rounding


# ----------------------------------------------------------------------------------------------------
# Through the adapter: networks and layer benchmarks, every algorithm against native's evaluation
# ----------------------------------------------------------------------------------------------------
def batch_size(workload: str) -> int:
    return 1 if workload == "alexnet" else 2


def request(workload: str, variant: str, conv: str, precision: str = "float32") -> BuildRequest:
    return BuildRequest(workload=get_workload(workload), phase="", batch=make_batch(workload, batch_size(workload)),
                        weights=with_random_biases(workload), variant=variant, device="cpu", precision=precision,
                        dropout=False, conv=conv)


@contextmanager
def built(workload: str, variant: str = "channels_last", conv: str = "native", precision: str = "float32"
          ) -> Iterator[TorchCase]:
    case = ADAPTER.build(request(workload, variant, conv, precision))
    assert isinstance(case, TorchCase)
    try:
        yield case
    finally:
        case.close()


@functools.cache
def evaluated(workload: str, variant: str, conv: str, precision: str = "float32"
              ) -> tuple[Evaluation, np.ndarray | None, dict[str, str], dict[str, str]]:
    """Evaluation, the input gradient of the timed gradient pass (layer benchmarks; canonical NHWC), traits and
    dtypes of one case."""
    with built(workload, variant, conv, precision) as case:
        evaluation = case.evaluate()
        dx = None
        if get_workload(workload).is_layer:
            grads = case.prepare("gradient")()
            assert len(grads) == len(evaluation.gradients) + 1  # kernel, bias and the input last
            dx = grads[-1].detach().float().permute(0, 2, 3, 1).numpy()
        return evaluation, dx, case.traits(), case.dtypes()


def tensors(workload: str, variant: str, conv: str, precision: str = "float32") -> dict[str, Any]:
    evaluation, dx, _, _ = evaluated(workload, variant, conv, precision)
    found: dict[str, Any] = {"output": evaluation.output, "loss": evaluation.loss, **evaluation.gradients}
    if dx is not None:
        found["input_gradient"] = dx
    return found


def budgets(workload: str, names: Any) -> dict[str, float]:
    tol = tolerance_for(workload)
    return {n: tol.output if n in ("output", "input_gradient") else tol.loss if n == "loss" else tol.gradient
            for n in names}


@pytest.mark.parametrize("variant", LAYOUTS)
@pytest.mark.parametrize("conv", ALGORITHMS)
@pytest.mark.parametrize("workload", ["lenet", "alexnet"])
def test_networks_equal_native(workload: str, conv: str, variant: str) -> None:
    want = tensors(workload, variant, "native")
    ties = near_tie_allowance(workload, batch_size(workload))  # the algorithms round differently from native
    assert_close(tensors(workload, variant, conv), want, budgets(workload, want), f"{workload} {variant} {conv}",
                 ties)


@pytest.mark.parametrize("variant", LAYOUTS)
@pytest.mark.parametrize("conv", ALGORITHMS)
@pytest.mark.parametrize("workload", list(LAYER_WORKLOADS))
def test_layers_equal_native(workload: str, conv: str, variant: str) -> None:
    want = tensors(workload, variant, "native")
    assert set(want) == {"output", "loss", "input_gradient", *(p.name for p in get_workload(workload).params)}
    assert_close(tensors(workload, variant, conv), want, budgets(workload, want), f"{workload} {variant} {conv}")


@pytest.mark.parametrize("workload", list(LAYER_WORKLOADS))
def test_layers_match_the_float64_reference(workload: str) -> None:
    """The layer benchmark computes the canonical layer: NHWC output, loss sum(y**2)/(2N), HWIO gradients."""
    expected = reference(workload, "", make_batch(workload, 2), with_random_biases(workload))
    want = {"output": expected.output, "loss": expected.loss, **expected.gradients}
    for variant in LAYOUTS:
        got = tensors(workload, variant, "native")
        got.pop("input_gradient")
        assert_close(got, want, budgets(workload, want), f"{workload} {variant} native vs reference")


@pytest.mark.parametrize("conv", ALL_ALGORITHMS)
def test_compiled_layer_equals_eager_native(conv: str) -> None:
    """``compile`` (torch.compile of the algorithm's code; fft's complex ops run as eager kernels inside)."""
    workload = "conv:alexnet.conv3"
    want = tensors(workload, "channels_last", "native")
    assert_close(tensors(workload, "compile", conv), want, budgets(workload, want), f"compile {conv}")


def bf16_supported() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no oneDNN bfloat16 kernels")
@pytest.mark.parametrize("conv", ALGORITHMS)
def test_bf16_layer_is_as_accurate_as_native(conv: str) -> None:
    workload = "conv:alexnet.conv2"
    exact = tensors(workload, "channels_last", "native")
    native_bf16 = tensors(workload, "channels_last", "native", "bf16")
    got = tensors(workload, "channels_last", conv, "bf16")
    assert evaluated(workload, "channels_last", conv, "bf16")[3] == {"activation": "bfloat16", "output": "bfloat16"}
    for name in ("output", "input_gradient", "conv2.kernel", "conv2.bias"):
        own = scaled_error(native_bf16[name], exact[name])
        assert 1e-4 < own < 2e-2, (name, own)  # bf16 really ran: 2^-8 = 3.9e-3 per rounding
        assert scaled_error(got[name], exact[name]) <= BF16_FACTOR * own, name


# ----------------------------------------------------------------------------------------------------
# What ran: traits, routing, FLOPs
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("variant", "conv"), list(EXPECTED_BACKEND))
@pytest.mark.parametrize("workload", ["lenet", "conv:lenet.conv1", "conv:alexnet.conv2"])
def test_traits_name_the_algorithm_and_what_computed_it(workload: str, variant: str, conv: str) -> None:
    traits = evaluated(workload, variant, conv)[2]
    assert traits["conv"] == conv
    assert traits["conv_backend"] == EXPECTED_BACKEND[(variant, conv)]
    # conv:lenet.conv1's kernel has one input channel (contiguous in both formats): read from its output
    assert traits["layout"] == ("NCHW" if variant == "eager" else "channels_last")


def test_networks_without_convolutions_have_no_conv_traits() -> None:
    with built_phase("autoencoder", "pretrain1") as case:
        assert "conv" not in case.traits() and "conv_backend" not in case.traits()


@contextmanager
def built_phase(workload: str, phase: str) -> Iterator[TorchCase]:
    req = BuildRequest(workload=get_workload(workload), phase=phase, batch=make_batch(workload, 2),
                       weights=with_random_biases(workload), variant="channels_last", device="cpu")
    case = ADAPTER.build(req)
    assert isinstance(case, TorchCase)
    try:
        yield case
    finally:
        case.close()


@pytest.mark.parametrize("conv", ALL_ALGORITHMS)
def test_native_is_left_untouched_and_the_others_are_routed(conv: str) -> None:
    with built("lenet", conv=conv) as case:
        for name in ("conv1", "conv2"):
            module = case._live().net.layers.get_submodule(name)
            assert ("forward" in vars(module)) == (conv != "native"), name  # native: nn.Conv2d.forward itself


@pytest.mark.parametrize("conv", ALL_ALGORITHMS)
def test_framework_flops_show_the_algorithms_arithmetic(conv: str) -> None:
    """im2col and direct do exactly the convolution's multiply-adds in GEMMs (FlopCounterMode counts them);
    FFTs are invisible to the counter, so fft's count is withheld rather than wrong."""
    with built("lenet", conv=conv) as case:
        flops = case.framework_flops("forward")
    assert flops == (None if conv == "fft" else forward_flops("lenet", "", batch_size("lenet")))


# ----------------------------------------------------------------------------------------------------
# The library switches
# ----------------------------------------------------------------------------------------------------
def executed_ops(fn: Callable[[], Any]) -> set[str]:
    with torch.autograd.profiler.profile() as prof:
        fn()
    return {event.name for event in prof.function_events}


@pytest.mark.parametrize("workload", ["lenet", "conv:alexnet.conv3"])
def test_no_onednn_runs_the_fallback_and_matches_native(workload: str) -> None:
    want = tensors(workload, "channels_last", "native")
    for conv in ALL_ALGORITHMS:
        assert_close(tensors(workload, "no_onednn", conv), want, budgets(workload, want), f"no_onednn {conv}")
    with built(workload, "no_onednn") as case:
        assert case.traits()["conv_backend"] == "Slow2d"
        with built(workload, "channels_last") as other:  # built in between: it sets the default flags
            assert read_switches(torch).mkldnn
            forward, gradient = case.prepare("forward"), case.prepare("gradient")
            ops = executed_ops(forward) | executed_ops(gradient)
            assert "aten::_slow_conv2d_forward" in ops and "aten::_slow_conv2d_backward" in ops, ops
            assert not any("mkldnn" in op or "nnpack" in op for op in ops), ops
            assert "aten::mkldnn_convolution" in executed_ops(other.prepare("forward"))
    assert read_switches(torch) == Switches()  # closed: PyTorch's defaults are back


def test_switch_flags_are_restored_when_the_case_closes() -> None:
    before = read_switches(torch)
    assert before == Switches()
    with built("lenet", "no_onednn"):
        assert read_switches(torch) == Switches(mkldnn=False, nnpack=False)
        assert not torch.backends.mkldnn.enabled and not torch._C._get_nnpack_enabled()
    assert read_switches(torch) == before and torch.backends.mkldnn.enabled


def test_gpu_switches_set_and_restore_their_flags_without_a_gpu() -> None:
    """The GPU variants' flags are process flags that a CPU build has too: set, read back, restored."""
    assert variant_switches("cudnn_benchmark") == Switches(cudnn_benchmark=True)
    assert variant_switches("deterministic") == Switches(cudnn_deterministic=True, deterministic_algorithms=True)
    assert variant_switches("channels_last") == variant_switches("compile") == Switches()
    for variant in ("cudnn_benchmark", "deterministic"):
        wanted = variant_switches(variant)
        before = apply_switches(torch, wanted)
        try:
            assert read_switches(torch) == wanted
            assert torch.backends.cudnn.benchmark == wanted.cudnn_benchmark
            assert torch.backends.cudnn.deterministic == wanted.cudnn_deterministic
            assert torch.are_deterministic_algorithms_enabled() == wanted.deterministic_algorithms
        finally:
            apply_switches(torch, before)
        assert read_switches(torch) == before == Switches()


def test_switch_variants_are_declared_for_their_devices_workloads_and_worker() -> None:
    assert ADAPTER.conv_algorithms == ALL_ALGORITHMS
    assert {"no_onednn", "cudnn_benchmark", "deterministic"} <= set(ADAPTER.variants)
    assert ADAPTER.variant_devices == {"no_onednn": ("cpu",), "cudnn_benchmark": ("gpu",), "deterministic": ("gpu",)}
    assert ADAPTER.variant_env == {"deterministic": {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}}
    assert ADAPTER.own_process("deterministic") and not ADAPTER.own_process("no_onednn")
    assert ADAPTER.process_env("gpu", 1, "deterministic")["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert "CUBLAS_WORKSPACE_CONFIG" not in ADAPTER.process_env("gpu", 1, "")
    assert set(CONV_WORKLOADS) == {"lenet", "alexnet", *LAYER_WORKLOADS}
    for variant in ("no_onednn", "cudnn_benchmark"):
        assert ADAPTER.variant_workloads[variant] == CONV_WORKLOADS
    assert "deterministic" not in ADAPTER.variant_workloads  # determinism applies to every workload
    for variant in ("no_onednn", "cudnn_benchmark", "deterministic"):
        assert ADAPTER.variant_help[variant]


def test_the_switches_exist_in_the_installed_pytorch() -> None:
    assert torch.backends.mkldnn.is_available() and torch.backends.nnpack.is_available()
    for flag in (torch._C._get_mkldnn_enabled, torch._C._get_nnpack_enabled, torch._C._get_cudnn_benchmark,
                 torch._C._get_cudnn_deterministic, torch.are_deterministic_algorithms_enabled):
        assert isinstance(flag(), bool)
    x, w = torch.randn(1, 2, 5, 5), torch.randn(3, 2, 3, 3)
    backend = torch._C._select_conv_backend(x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
    assert backend.name in torch._C._ConvBackend.__members__


@pytest.mark.parametrize("variant", ["cudnn_benchmark", "deterministic"])
def test_gpu_switches_are_unavailable_on_a_cpu(variant: str) -> None:
    with pytest.raises(CaseUnavailable, match="runs on gpu only"):
        ADAPTER.build(request("lenet", variant, "native"))
    assert read_switches(torch) == Switches()


def test_conv_switches_are_unavailable_without_convolutions() -> None:
    req = BuildRequest(workload=get_workload("lstm"), phase="", batch=make_batch("lstm", 2),
                       weights=with_random_biases("lstm"), variant="no_onednn", device="cpu")
    with pytest.raises(CaseUnavailable, match="applies to"):
        ADAPTER.build(req)


# ----------------------------------------------------------------------------------------------------
# Mutation through the adapter: a wrong algorithm in the routed modules fails the network comparison
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mutant", MUTANTS)
@pytest.mark.parametrize("workload", ["lenet", "conv:alexnet.conv2"])
def test_a_wrong_algorithm_fails_through_the_adapter(workload: str, mutant: str, monkeypatch: Any) -> None:
    want = tensors(workload, "channels_last", "native")
    right = convolution.conv2d

    def wrong(x: Any, w: Any, b: Any, s: int, p: int, name: str, channels_last: bool) -> Any:
        return MUTANTS[mutant](lambda *a: right(*a, name, channels_last))(x, w, b, s, p)

    monkeypatch.setattr(convolution, "conv2d", wrong)  # what the routed modules call
    for conv in ALGORITHMS:
        with built(workload, conv=conv) as case:
            evaluation = case.evaluate()
        got = {"output": evaluation.output, "loss": evaluation.loss, **evaluation.gradients}
        want.pop("input_gradient", None)
        with pytest.raises(AssertionError, match="off by"):
            assert_close(got, want, budgets(workload, want), f"{workload} {conv} {mutant}")
