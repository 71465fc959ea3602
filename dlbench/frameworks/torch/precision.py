"""PyTorch precision: autocast (mixed precision as the PyTorch AMP guide recommends), TF32 flags, which
precisions a device can run, and the dtype probe that shows what a built case really computes with.

The compute dtype of each mixed precision comes from :data:`dlbench.cases.precision.MIXED_DTYPES` and the
tensor-core rule for TF32 from :func:`dlbench.cases.precision.tensor_core_problem`, shared by every adapter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dlbench.cases.precision import tensor_core_problem
from dlbench.frameworks.torch.networks import ForwardFn, _Inputs, _Net

if TYPE_CHECKING:
    import torch
    from torch import nn

PROBED_LAYERS: tuple[str, ...] = ("Conv2d", "Linear", "LSTM", "LSTMCell", "MultiheadAttention")


def _with_autocast(fn: Callable[[_Inputs, bool], Any], device_type: str, dtype: torch.dtype
                   ) -> Callable[[_Inputs, bool], Any]:
    """``fn`` under ``torch.autocast``: the float32 parameters stay the master weights, autocast casts
    the inputs of matmuls, convolutions and the LSTM to ``dtype`` (cached per call) and runs losses and
    softmax in float32. Inside the function, so that ``torch.compile`` traces the autocast region too."""
    import torch

    def wrapped(inputs: _Inputs, training: bool) -> Any:
        with torch.autocast(device_type, dtype=dtype):
            return fn(inputs, training)

    return wrapped


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _probe_dtypes(net: _Net, forward: ForwardFn, inputs: _Inputs) -> dict[str, str]:
    """Dtypes of one real forward call: the output, and the output of the first matmul/convolution layer
    that runs (seen through a forward hook), so that a precision autocast did not apply shows up."""
    import torch

    seen: dict[str, str] = {}

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        first = output[0] if isinstance(output, tuple) else output
        seen.setdefault("activation", _dtype_name(first.dtype))

    handles = [m.register_forward_hook(hook) for m in net.layers.modules()
               if type(m).__name__ in PROBED_LAYERS]
    try:
        with torch.inference_mode():
            out = forward(inputs, False)
    finally:
        for handle in handles:
            handle.remove()
    seen["output"] = _dtype_name(out.dtype)
    return seen


def _precision_problem(torch: Any, precision: str, device: str) -> str | None:
    """Why this device cannot run ``precision`` (None if it can), asked of PyTorch itself.

    CPU: low precision needs oneDNN's kernels. Without them autocast falls back to ATen's reference kernels
    (AlexNet's fp16 gradient took 8x its float32 time here, a cost no user would accept) and nn.LSTM has
    no fp16 kernel at all, so such a CPU is reported as lacking the precision rather than measured."""
    if device != "gpu":
        if precision == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return "PyTorch's oneDNN reports no bfloat16 kernels on this CPU (they need AVX512 or newer)"
        if precision == "fp16" and not torch.ops.mkldnn._is_mkldnn_fp16_supported():
            return ("PyTorch's oneDNN reports no float16 kernels on this CPU (they need AVX512-FP16 or "
                    "AMX-FP16); only slow reference kernels remain, and none for nn.LSTM")
        return None
    major = torch.cuda.get_device_capability()[0]
    if precision == "tf32" and (problem := tensor_core_problem(precision, major)) is not None:
        return problem
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bfloat16 support (torch.cuda.is_bf16_supported() is False)"
    return None


def _set_tf32(torch: Any, on: bool) -> None:
    """Process-wide flags, set for each case at build time (the cases of a worker run one at a time)."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on

