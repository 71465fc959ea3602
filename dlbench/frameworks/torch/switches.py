"""The PyTorch variants that are library switches (``docs/convolution.md``): process-wide flags of
``torch.backends`` and ``torch.use_deterministic_algorithms``, each variant the default ``channels_last`` model
with its flags set. Every flag below was checked against the installed PyTorch 2.13 (its Python sources:
``torch/backends/mkldnn``, ``torch/backends/nnpack``, ``torch/backends/cudnn`` and ``torch/__init__.py``).

* ``no_onednn`` (CPU): ``torch.backends.mkldnn.enabled = False`` and NNPACK off
  (``torch.backends.nnpack.set_flags(False)``), so that native convolutions take PyTorch's own im2col + GEMM
  kernel, ``slow_conv2d`` (``thnn_conv2d`` in older releases; ``torch._C._select_conv_backend`` names it
  ``Slow2d``) instead of oneDNN's (``Mkldnn``). NNPACK goes off too because it would take over what oneDNN
  leaves: with oneDNN alone off, PyTorch 2.13 selects ``NnpackSpatial`` for every LeNet and AlexNet
  convolution at batch 16 or more (``Slow2d`` below). oneDNN's bf16 GEMMs and its LSTM go with it.
* ``cudnn_benchmark`` (GPU): ``torch.backends.cudnn.benchmark = True``: cuDNN times its candidate algorithms
  for every new convolution shape in the first call and keeps the fastest. PyTorch's default, and the
  adapter's for every other variant, is off (cuDNN's heuristic choice).
* ``deterministic`` (GPU): ``torch.backends.cudnn.deterministic = True`` and
  ``torch.use_deterministic_algorithms(True)``: deterministic cuDNN algorithms only, and an error from any
  op that has no deterministic implementation; cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` for
  deterministic GEMMs, read when the CUDA context is created, so the variant runs in a worker of its own with
  it set before PyTorch is imported (``Adapter.variant_env``).

The flags are process-wide. Every case sets its variant's complete set (:class:`Switches`, the defaults for
the other variants) when it is built and again before each pass is timed or evaluated, so that the timed
callable always runs under its own flags whatever was built before it, and puts the flags it found back
when it is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlbench.workloads import LAYER_WORKLOADS, WORKLOADS

NO_ONEDNN = "no_onednn"
CUDNN_BENCHMARK = "cudnn_benchmark"
DETERMINISTIC = "deterministic"
SWITCH_VARIANTS: tuple[str, ...] = (NO_ONEDNN, CUDNN_BENCHMARK, DETERMINISTIC)
SWITCH_DEVICES: dict[str, tuple[str, ...]] = {NO_ONEDNN: ("cpu",), CUDNN_BENCHMARK: ("gpu",),
                                              DETERMINISTIC: ("gpu",)}
CUBLAS_WORKSPACE = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}  # cuBLAS's documented deterministic setting
SWITCH_ENV: dict[str, dict[str, str]] = {DETERMINISTIC: CUBLAS_WORKSPACE}
# The convolution switches mean something only where there are convolutions; determinism applies to all.
CONV_WORKLOADS: tuple[str, ...] = (*(w.name for w in WORKLOADS.values() if w.has_convolutions), *LAYER_WORKLOADS)
SWITCH_WORKLOADS: dict[str, tuple[str, ...]] = {NO_ONEDNN: CONV_WORKLOADS, CUDNN_BENCHMARK: CONV_WORKLOADS}
SWITCH_HELP: dict[str, str] = {
    NO_ONEDNN: "CPU, conv nets: channels_last with oneDNN and NNPACK off (torch.backends.mkldnn/nnpack) while "
               "the case runs: native convolutions take PyTorch's own im2col kernel slow_conv2d (Slow2d)",
    CUDNN_BENCHMARK: "GPU, conv nets: channels_last with cuDNN autotuning on (torch.backends.cudnn.benchmark; "
                     "the default is off): the fastest measured algorithm per shape, searched in the first call",
    DETERMINISTIC: "GPU: channels_last with torch.backends.cudnn.deterministic, "
                   "torch.use_deterministic_algorithms(True) and CUBLAS_WORKSPACE_CONFIG=:4096:8 (own worker)",
}


@dataclass(frozen=True)
class Switches:
    """The process-wide flags a case runs under (PyTorch's defaults unless its variant is a switch)."""

    mkldnn: bool = True  # torch.backends.mkldnn.enabled
    nnpack: bool = True  # torch._C._get_nnpack_enabled(), set by torch.backends.nnpack.set_flags
    cudnn_benchmark: bool = False  # torch.backends.cudnn.benchmark
    cudnn_deterministic: bool = False  # torch.backends.cudnn.deterministic
    deterministic_algorithms: bool = False  # torch.use_deterministic_algorithms


def variant_switches(variant: str) -> Switches:
    """The flags of ``variant``: its switch, PyTorch's defaults for everything else."""
    if variant == NO_ONEDNN:
        return Switches(mkldnn=False, nnpack=False)
    if variant == CUDNN_BENCHMARK:
        return Switches(cudnn_benchmark=True)
    if variant == DETERMINISTIC:
        return Switches(cudnn_deterministic=True, deterministic_algorithms=True)
    return Switches()


def read_switches(torch: Any) -> Switches:
    """The flags in effect in this process, read back from PyTorch."""
    return Switches(
        mkldnn=bool(torch.backends.mkldnn.enabled),
        nnpack=bool(torch._C._get_nnpack_enabled()),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
        cudnn_deterministic=bool(torch.backends.cudnn.deterministic),
        deterministic_algorithms=bool(torch.are_deterministic_algorithms_enabled()),
    )


def apply_switches(torch: Any, switches: Switches) -> Switches:
    """Put ``switches`` in effect; return the flags that were in effect before."""
    before = read_switches(torch)
    if before == switches:
        return before
    torch.backends.mkldnn.enabled = switches.mkldnn
    torch.backends.nnpack.set_flags(switches.nnpack)
    torch.backends.cudnn.benchmark = switches.cudnn_benchmark
    torch.backends.cudnn.deterministic = switches.cudnn_deterministic
    torch.use_deterministic_algorithms(switches.deterministic_algorithms)
    return before


def switch_traits(switches: Switches, cuda: bool) -> dict[str, str]:
    """The GPU flags a case ran under, for its traits (on a CPU they change nothing and are left out; what
    ``no_onednn`` changes shows in ``conv_backend``)."""
    if not cuda:
        return {}
    return {"cudnn_benchmark": "on" if switches.cudnn_benchmark else "off",
            "deterministic": "on" if switches.deterministic_algorithms else "off"}
