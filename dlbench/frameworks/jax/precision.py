"""Precision in JAX: the matmul precision of each dlbench precision, the tensor-core check of a device, and
the dtypes a traced program really computes with.

The recipes themselves are framework-neutral (:mod:`dlbench.cases.precision`); the case applies them by
casting the float32 master parameters to the compute dtype inside the compiled function
(:class:`dlbench.frameworks.jax.case.JaxCase`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlbench.cases.precision import tensor_core_problem

MATMUL_PRECISION = "highest"
# jax_default_matmul_precision per dlbench precision (read when a function is traced): float32 in full,
# TF32 where asked for; for bf16/fp16 operands the "default" lets XLA use the native low-precision units.
MATMUL_PRECISIONS: dict[str, str] = {"float32": "highest", "tf32": "tensorfloat32"}
# Precisions that need tensor cores on a GPU (bf16 and fp16 run on any GPU, XLA picks the units).
TENSOR_CORE_PRECISIONS = ("tf32",)
CONTRACTIONS = ("conv_general_dilated", "dot_general")


def compute_capability_major(device: Any) -> int:
    """The major compute capability of a JAX device (``compute_capability`` is a string such as "8.6"); 0 for
    a device without one (a CPU)."""
    capability = str(getattr(device, "compute_capability", "") or "0")
    return int(capability.split(".")[0])


def precision_problem(precision: str, device: Any) -> str | None:
    """Why ``device`` cannot run ``precision`` in JAX (None if it can): TF32 needs tensor cores."""
    if precision in TENSOR_CORE_PRECISIONS:
        return tensor_core_problem(precision, compute_capability_major(device))
    return None


def _first_operand_dtype(jaxpr: Any, wanted: Callable[[Any], bool]) -> str | None:
    """Dtype of the first operand of the first equation ``wanted`` accepts, searching nested jaxprs in order."""
    for eqn in jaxpr.eqns:
        if wanted(eqn):
            return str(eqn.invars[0].aval.dtype)
        for value in eqn.params.values():
            inner = getattr(value, "jaxpr", value)  # ClosedJaxpr -> Jaxpr
            if hasattr(inner, "eqns"):
                found = _first_operand_dtype(inner, wanted)
                if found is not None:
                    return found
    return None


def _real_contraction(eqn: Any) -> bool:
    """A convolution or matmul of real operands. The complex products of an FFT convolution (in the frequency
    domain, float32 in every precision: dlbench.frameworks.jax.convolution) are not the layers' arithmetic."""
    return eqn.primitive.name in CONTRACTIONS and eqn.invars[0].aval.dtype.kind != "c"


def _fft(eqn: Any) -> bool:
    return bool(eqn.primitive.name == "fft")


def traced_dtypes(closed: Any, matmul_precision: str) -> dict[str, str]:
    """The dtypes of a traced forward program (a ``ClosedJaxpr``): the operand dtype of its first real
    convolution or matmul (what the arithmetic runs in; its float32 accumulator is rounded back right after)
    and the dtype of the output; ``matmul`` "tf32" when the matmul precision is TF32; ``fft`` the operand dtype
    of the first FFT where the convolutions are computed by FFT (float32 in every precision)."""
    seen = {"output": str(closed.out_avals[0].dtype)}
    operand = _first_operand_dtype(closed.jaxpr, _real_contraction)
    if operand is not None:
        seen["activation"] = operand
    transform = _first_operand_dtype(closed.jaxpr, _fft)
    if transform is not None:
        seen["fft"] = transform
    if matmul_precision == "tensorfloat32":
        seen["matmul"] = "tf32"
    return seen
