"""Numeric precisions as a dimension of the comparison: what each one means, framework-neutrally.

A precision names a *recipe*, not just a dtype. ``float32`` is full float32 (TF32 explicitly off on GPUs);
``tf32`` is float32 storage with TF32 tensor-core matmuls and convolutions (NVIDIA Ampere and later only);
``bf16`` and ``fp16`` are mixed precision as the frameworks recommend it: float32 master weights,
low-precision compute of the layers, and float32 for the loss, the softmax and reductions such as
normalisation statistics and pooled sums. ``fp16`` gradient passes multiply the loss by a static loss scale
and the gradients by its inverse, because a real fp16 training step has to (fp16 gradients underflow
otherwise); that multiplication is part of the measured cost.

A case whose framework or device cannot do the precision is ``unavailable`` with the reason. To rule out a
silent float32 run, every built case reports the dtypes it actually computes with (see
:meth:`dlbench.frameworks.base.BuiltCase.dtypes`), and :func:`dtype_problem` checks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dlbench.cases.spec import PRECISIONS
from dlbench.errors import SuiteError

# Parameters that a workload's mixed-precision recipe keeps in float32 (name suffixes); every other float
# parameter is cast to the compute dtype. The transformer's embeddings feed the float32 residual stream and
# its layer norms run in float32 (statistics and affine), as PyTorch's autocast leaves them.
FLOAT32_PARAMS: dict[str, tuple[str, ...]] = {
    "transformer": ("embedding.table", "position.table", ".gamma", ".beta"),
}
FP16_LOSS_SCALE = 1024.0  # static; fp16's largest value is 65504, so a loss of ~2.3 scaled stays far below it


@dataclass(frozen=True)
class Precision:
    """One precision recipe.

    ``compute``: dtype name of the layers' arithmetic (activations); ``significand_bits``: bits of precision
    of the operands of the matmuls and convolutions, implicit bit included (24 for float32, 11 for TF32 and
    fp16, 8 for bf16): verification derives its tolerances from it.
    """

    name: str
    compute: str
    significand_bits: int
    loss_scale: float
    gpu_only: bool
    description: str

    @property
    def mixed(self) -> bool:
        """Low-precision compute with float32 master weights (bf16, fp16)."""
        return self.compute != "float32"

    @property
    def unit_roundoff(self) -> float:
        """Relative rounding error of one operand: 2**-significand_bits."""
        return 2.0 ** -self.significand_bits


_TABLE: dict[str, Precision] = {
    "float32": Precision("float32", "float32", 24, 1.0, False,
                         "full float32 (TF32 off on GPUs)"),
    "tf32": Precision("tf32", "float32", 11, 1.0, True,
                      "float32 storage, TF32 tensor-core matmuls and convolutions (NVIDIA Ampere or later)"),
    "bf16": Precision("bf16", "bfloat16", 8, 1.0, False,
                      "mixed bfloat16: float32 master weights, bf16 compute, float32 loss/softmax/reductions"),
    "fp16": Precision("fp16", "float16", 11, FP16_LOSS_SCALE, False,
                      "mixed float16 as bf16, plus a static loss scale of "
                      f"{FP16_LOSS_SCALE:g} (and unscale) in gradient passes"),
}
assert tuple(_TABLE) == PRECISIONS

# The compute dtype of each mixed precision (bf16 -> bfloat16, fp16 -> float16): autocast and the calibration
# kernels read it here, so the table exists once.
MIXED_DTYPES: dict[str, str] = {name: p.compute for name, p in _TABLE.items() if p.compute != "float32"}
TENSOR_CORE_MAJOR = 8  # NVIDIA Ampere: the first compute capability with TF32 (and bf16) tensor cores


def tensor_core_problem(name: str, major: int) -> str | None:
    """Why a GPU of compute capability ``major``.x cannot run precision ``name`` on tensor cores (None if it
    can). Each adapter says which of its precisions need them (TF32 everywhere; bf16 in TensorFlow)."""
    if major < TENSOR_CORE_MAJOR:
        return f"{name} needs an NVIDIA GPU of compute capability {TENSOR_CORE_MAJOR}.0 or later, this one is {major}.x"
    return None


def get_precision(name: str) -> Precision:
    """The recipe called ``name``; an unknown name is a one-line user error."""
    try:
        return _TABLE[name]
    except KeyError:
        raise SuiteError(f"unknown precision {name!r} (known: {', '.join(PRECISIONS)})") from None


def check_precisions(names: tuple[str, ...], where: str = "precision") -> tuple[str, ...]:
    """Validate a list of precision names (order kept, repeats dropped)."""
    if not names:
        raise SuiteError(f"{where}: expected at least one precision")
    for name in names:
        if name not in _TABLE:
            raise SuiteError(f"{where}: unknown precision {name!r} (known: {', '.join(PRECISIONS)})")
    return tuple(dict.fromkeys(names))


def device_problem(name: str, device: str) -> str | None:
    """Why ``device`` can never run precision ``name`` in any framework (None if it may)."""
    precision = get_precision(name)
    if precision.gpu_only and device != "gpu":
        return f"{name} is a GPU tensor-core mode (NVIDIA Ampere or later); CPUs have no TF32 arithmetic"
    return None


def dtype_problem(name: str, seen: Mapping[str, str]) -> str | None:
    """Why the dtypes a built case reported do not show precision ``name`` (None when they do).

    ``seen`` must name the dtype of one intermediate ``activation`` (the first matmul or convolution's
    output) and of the ``output``. The activation must be the recipe's compute dtype; the output may also
    be float32, because several recipes return float32 logits for the float32 softmax.
    """
    precision = get_precision(name)
    activation, output = seen.get("activation"), seen.get("output")
    if activation is None or output is None:
        return f"the adapter did not report the dtypes it computes with, so {name} cannot be confirmed"
    if activation != precision.compute:
        return (f"{name} requested but the layers computed in {activation} (output {output}): "
                f"the framework did not apply {precision.compute} here")
    if output not in (precision.compute, "float32"):
        return f"{name} requested but the output is {output}"
    return None


def round_to_precision(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` rounded (to nearest, ties to even) to the storage of precision ``name``'s compute dtype and
    returned as float32; unchanged for float32 and TF32 (whose storage is float32) and for integer arrays.

    Verification uses it for the reference: every framework casts the same float32 weights and inputs to
    bf16/fp16 first, so the float64 reference of *those* operands is what they all approximate; what is left
    is the rounding of the intermediate results, which the derived tolerances bound.
    """
    compute = get_precision(name).compute
    array = np.asarray(values)
    if compute == "float32" or array.dtype.kind != "f":
        return array
    single = np.ascontiguousarray(array, dtype=np.float32)
    if compute == "float16":
        return single.astype(np.float16).astype(np.float32)
    bits = single.view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)


def kept_float32(workload: str, param: str) -> bool:
    """Whether the mixed-precision recipe of ``workload`` leaves parameter ``param`` in float32."""
    suffixes = FLOAT32_PARAMS.get(workload)
    return suffixes is not None and param.endswith(suffixes)
