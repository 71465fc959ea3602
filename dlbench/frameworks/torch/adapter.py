"""``TorchAdapter``: the runtime set-up and information of ``initialize``, and ``build``, which puts a case
together from the other modules of :mod:`dlbench.frameworks.torch` (the table of networks by workload is
by workload is the ``dlbench.workloads`` registry: a network is a builder in its own module, named by its workload
plugin, see :func:`torch_builder`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, ClassVar, cast

from dlbench.cases.precision import MIXED_DTYPES, get_precision
from dlbench.frameworks.base import Adapter, BuildRequest, CaseUnavailable, RuntimeInfo, plugin_builder
from dlbench.frameworks.cuda_arch import kernel_binaries
from dlbench.frameworks.torch.backend import conv_probe
from dlbench.frameworks.torch.bindings import _load_weights, _mark_trainable, _to_inputs
from dlbench.frameworks.torch.case import TorchCase, _State
from dlbench.frameworks.torch.convolution import TORCH_CONV_ALGORITHMS, route_all
from dlbench.frameworks.torch.layer import _conv_layer
from dlbench.frameworks.torch.networks import _Net, _Options
from dlbench.frameworks.torch.precision import _precision_problem, _probe_dtypes, _set_tf32, _with_autocast
from dlbench.frameworks.torch.switches import (
    SWITCH_DEVICES,
    SWITCH_ENV,
    SWITCH_HELP,
    SWITCH_VARIANTS,
    SWITCH_WORKLOADS,
    Switches,
    apply_switches,
    read_switches,
    switch_traits,
    variant_switches,
)
from dlbench.workloads import Workload

# Variants that only change the transformer's attention (other workloads: unavailable).
ATTENTION_VARIANTS: tuple[str, ...] = ("plain_attention",)
# The LSTM as a loop over nn.LSTMCell (the unfused strategy); only the lstm workload has it.
LSTM_CELL_VARIANT = "lstm_cell"
# The one place where dlbench's device names meet PyTorch's.
TORCH_DEVICES: dict[str, str] = {"cpu": "cpu", "gpu": "cuda"}

# What a workload plugin's PyTorch builder is (docs/plugins.md): (definition, options) -> _Net, called on the
# meta device (the adapter allocates and loads the canonical weights). The built-ins name theirs in
# dlbench.workloads.builtin; the layer benchmarks all share _conv_layer.
TorchBuilder = Callable[[Workload, _Options], _Net]


def torch_builder(workload: Workload) -> TorchBuilder:
    """The PyTorch builder of ``workload`` (CaseUnavailable when its plugin names none)."""
    if workload.is_layer:
        return _conv_layer
    return cast(TorchBuilder, plugin_builder(workload, "torch", "PyTorch"))


def _search(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None


def _backends(torch: Any, cuda: bool) -> dict[str, str]:
    """Versions of the libraries doing the arithmetic (some only visible in ``torch.__config__.show()``)."""
    config = torch.__config__.show()
    info: dict[str, str] = {}
    if torch.backends.mkldnn.is_available():
        info["onednn"] = _search(r"(?:oneDNN|MKL-DNN) v([\d.]+)", config) or "available"
    if torch.backends.mkl.is_available():
        info["mkl"] = _search(r"Math Kernel Library Version ([\d.]+)", config) or "available"
    if torch.backends.openmp.is_available():
        info["openmp"] = _search(r"OpenMP (\d+)", config) or "available"
    try:
        info["cpu_capability"] = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        pass
    if torch.version.cuda:
        info["cuda"] = str(torch.version.cuda)
    if cuda:
        major, minor = torch.cuda.get_device_capability(0)
        info["kernel_binaries"] = kernel_binaries((major, minor), torch.cuda.get_arch_list())
        cudnn = torch.backends.cudnn.version()
        if cudnn is not None:
            info["cudnn"] = str(cudnn)
        info["gpu"] = str(torch.cuda.get_device_name(0))
    return info


class TorchAdapter(Adapter):
    """PyTorch. See the docstring of :mod:`dlbench.frameworks.torch` for the variants and why
    ``channels_last`` is the default."""

    name = "torch"
    display_name = "PyTorch"
    module = "torch"
    distributions = ("torch",)
    variants = ("channels_last", "eager", "compile", "plain_attention", LSTM_CELL_VARIANT, *SWITCH_VARIANTS)
    default_variant = "channels_last"
    variant_workloads = {**{v: ("transformer",) for v in ATTENTION_VARIANTS}, LSTM_CELL_VARIANT: ("lstm",),
                         **SWITCH_WORKLOADS}
    variant_devices: ClassVar[dict[str, tuple[str, ...]]] = SWITCH_DEVICES
    variant_env: ClassVar[dict[str, dict[str, str]]] = SWITCH_ENV
    conv_algorithms: ClassVar[tuple[str, ...]] = TORCH_CONV_ALGORITHMS
    precisions = ("float32", "tf32", "bf16", "fp16")
    variant_help = {
        "channels_last": "eager PyTorch, conv nets in channels_last memory format (fast oneDNN path on CPU); "
                         "transformer attention by F.scaled_dot_product_attention",
        "eager": "eager PyTorch, plain contiguous NCHW tensors",
        "compile": "channels_last model under torch.compile (inductor); compilation is in the first call",
        "plain_attention": "transformer only: eager, attention as matmul, masked softmax, matmul "
                           "instead of F.scaled_dot_product_attention",
        LSTM_CELL_VARIANT: "lstm only: eager, a Python loop over nn.LSTMCell (unfused: kernels per step) "
                           "instead of the fused nn.LSTM (one cuDNN kernel on a GPU)",
        **SWITCH_HELP,
    }

    def supports_gpu_build(self) -> bool:
        """A ``+cpu`` wheel (local version label, e.g. ``2.13.0+cpu``) has no CUDA support."""
        version = self.version()
        if version is None:
            return False
        local = version.partition("+")[2]
        return local.split(".")[0] != "cpu"

    def worker_env(self, device: str, threads: int) -> dict[str, str]:
        """Inductor caches compiled kernels on disk across processes; with caches the ``compile`` variant's
        first call would depend on what ran on this machine before. Disabled for reproducible numbers."""
        return {"TORCHINDUCTOR_FORCE_DISABLE_CACHES": "1"}

    def device_memory_in_use(self, device: str) -> int | None:
        """``torch.cuda.memory_allocated()``: bytes in live tensors (the cache the allocator keeps is not
        counted: it is reusable, not leaked)."""
        import torch

        if device != "gpu" or not torch.cuda.is_available():
            return None
        return int(torch.cuda.memory_allocated())

    def preload(self, device: str) -> None:
        """``torch``, and ``torch._dynamo``, which the first FLOP count of every worker imports (the counting
        mode's dispatch is wrapped in a "dynamo disabled" guard that imports it on first use): the largest part
        of the warm-up case otherwise, paid here beside the other workers' imports instead of on the pinned
        core. Neither starts a thread pool (that happens with the first parallel op, after initialize)."""
        import torch
        import torch._dynamo  # noqa: F401
        import torch.utils.flop_counter  # noqa: F401

        del torch

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        import torch

        cuda = torch.cuda.is_available()
        if device == "gpu" and not cuda:
            raise RuntimeError(f"PyTorch {torch.__version__} sees no CUDA GPU (a +cpu build, or no driver)")
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # already set, or parallel work already ran; the value in effect is recorded below
        # Full float32 everywhere: TF32 would silently change GPU matmuls/convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        # PyTorch's default flags (cuDNN autotuning off: the heuristic choice); the switch variants set theirs
        # for their own cases only (switches.py).
        apply_switches(torch, Switches())
        settings = {
            "tf32": "off",
            "matmul_precision": torch.get_float32_matmul_precision(),
            "interop_threads": str(torch.get_num_interop_threads()),
            "cudnn_benchmark": "on" if torch.backends.cudnn.benchmark else "off",
            "onednn_bf16": "yes" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "no",
            "onednn_fp16": "yes" if torch.ops.mkldnn._is_mkldnn_fp16_supported() else "no",
        }
        return RuntimeInfo(
            framework=self.name,
            version=str(torch.__version__),
            threads=torch.get_num_threads(),
            devices=("cpu", "gpu") if cuda else ("cpu",),
            backends=_backends(torch, cuda),
            settings=settings,
        )

    def _build(self, request: BuildRequest) -> TorchCase:
        import torch

        variant, workload = request.variant, request.workload
        builder = torch_builder(workload)
        if request.device == "gpu" and not torch.cuda.is_available():
            raise CaseUnavailable("PyTorch sees no CUDA GPU")
        problem = _precision_problem(torch, request.precision, request.device)
        if problem is not None:
            raise CaseUnavailable(problem)
        if request.device == "gpu":
            _set_tf32(torch, request.precision == "tf32")
        compiled = variant == "compile"
        if compiled and request.device == "gpu" and not _has_triton():
            raise CaseUnavailable("torch.compile on GPU needs triton, which is not installed")
        phase = workload.phase(request.phase)

        opts = _Options(phase=request.phase, dropout=request.dropout, flatten_hwc=variant != "eager",
                        fused_attention=variant not in ATTENTION_VARIANTS, lstm_cell=variant == LSTM_CELL_VARIANT)
        device = torch.device(TORCH_DEVICES[request.device])
        # Built on the meta device and allocated uninitialised on the target: PyTorch's own random
        # initialisation (slow for AlexNet's 62M weights) would be overwritten by the canonical weights anyway.
        with torch.device("meta"):
            net = builder(workload, opts)
        if not isinstance(net, _Net):
            raise TypeError(f"the PyTorch builder of {workload.name!r} returned {type(net).__name__}, not a _Net")
        if request.conv == "fft":
            net = dataclasses.replace(net, flops_visible=False)  # FlopCounterMode counts no FFT
        route_all(net.layers, request.conv, channels_last=variant != "eager")  # native: left as it is
        net.layers.to_empty(device=device)
        _load_weights(net, request.weights)
        trainable = _mark_trainable(net, phase.trainable)
        memory_format = torch.contiguous_format if variant == "eager" else torch.channels_last
        # Only 4-D conv weights change layout. Documented usage, missing from the type stubs.
        net.layers.to(memory_format=memory_format)  # type: ignore[call-overload]
        params = tuple(net.layers.get_parameter(b.path) for b in trainable)
        count = sum(p.numel() for p in net.layers.parameters() if p.requires_grad)

        forward, output_and_loss = net.forward, net.output_and_loss
        autocast = MIXED_DTYPES.get(request.precision)
        if autocast is not None:
            dtype = getattr(torch, autocast)
            forward = _with_autocast(forward, device.type, dtype)
            output_and_loss = _with_autocast(output_and_loss, device.type, dtype)
        inputs = _to_inputs(request.batch, device, memory_format)
        if net.layer:
            inputs.x.requires_grad_(True)  # a layer benchmark's gradient pass computes the input gradient too
        switches = variant_switches(variant)
        restore = apply_switches(torch, switches)  # in effect for the probe; the case keeps them and restores
        try:
            with conv_probe(torch, net.layers, request.conv) as probe:
                dtypes = _probe_dtypes(net, forward, inputs)  # before compiling: the compiled code has no hooks
            traits = case_traits(torch, net, workload.name, probe.layouts)
            if workload.has_convolutions:
                traits.update(conv=request.conv, conv_backend=probe.label())
            traits.update(switch_traits(read_switches(torch), device.type == "cuda"))
        except RuntimeError as exc:
            apply_switches(torch, restore)
            if autocast is None:
                raise
            # e.g. nn.LSTM under float16 autocast on a CPU whose oneDNN has no fp16 RNN primitive
            raise CaseUnavailable(f"PyTorch has no {autocast} kernel for this network on {request.device}: "
                                  f"{str(exc).splitlines()[0]}") from exc
        except BaseException:
            apply_switches(torch, restore)
            raise
        if request.precision == "tf32":
            dtypes["matmul"] = "tf32"
        if compiled:
            torch._dynamo.reset()  # a fresh cache per case, whatever ran before
            forward = torch.compile(forward, dynamic=False)
            output_and_loss = torch.compile(output_and_loss, dynamic=False)
        state = _State(net, inputs, trainable, params, forward, output_and_loss, switches, restore)
        loss_scale = get_precision(request.precision).loss_scale
        return TorchCase(state, device, compiled, count, loss_scale, dtypes, traits)


def case_traits(torch: Any, net: _Net, workload: str, conv_outputs: dict[str, str] | None = None
                ) -> dict[str, str]:
    """The layout in effect, read from the convolution weights themselves (a 1-channel input tensor is
    contiguous in both formats and says nothing), or where every kernel has one input channel (and so is
    contiguous in both formats too: the layer benchmark ``conv:lenet.conv1``) from the first convolution's output
    in the probe call (``conv_outputs``, see :func:`.backend.conv_probe`); and the LSTM's strategy (see
    BuiltCase.traits). The convolution algorithm's traits are added by the adapter."""
    traits: dict[str, str] = {}
    kernels = [p for p in net.layers.parameters() if p.dim() == 4]
    ambiguous = all(p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    if kernels and ambiguous and conv_outputs:
        traits["layout"] = next(iter(conv_outputs.values()))
    elif kernels:
        nhwc = all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
        traits["layout"] = "channels_last" if nhwc and not all(p.is_contiguous() for p in kernels) else "NCHW"
    if workload == "lstm":
        cell = any(type(m).__name__ == "LSTMCell" for m in net.layers.modules())
        traits["recurrence"] = "unfused" if cell else "fused"
    return traits


def _has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton
    except ImportError:
        return False
    return bool(has_triton())
