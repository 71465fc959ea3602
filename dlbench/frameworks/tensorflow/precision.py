"""Precision in TensorFlow: which precisions a device can run, the Keras dtype policy of each, the unscaling
of loss-scaled gradients, and the dtypes a traced graph really computes with.

The recipes themselves are framework-neutral (:mod:`dlbench.cases.precision`); the networks apply them the way
Keras' mixed policies do (see :class:`dlbench.frameworks.tensorflow.networks._Network`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from dlbench.cases.precision import get_precision, tensor_core_problem
from dlbench.frameworks.tensorflow.graph import CONTRACTION_OPS
from dlbench.frameworks.tensorflow.runtime import Tensor
from dlbench.machine.capture import cpu_features

# CPU features with which TensorFlow's oneDNN runs each low precision (TF's IsDataTypeSupportedByOneDNNOnThisCPU
# in tensorflow/core/util/util.cc, which has no Python binding; the /proc/cpuinfo names of those features).
ONEDNN_CPU_FEATURES: dict[str, tuple[str, ...]] = {
    "bf16": ("avx512f", "avx_ne_convert", "amx_bf16"),
    "fp16": ("avx512_fp16", "amx_fp16", "avx_ne_convert"),
}


def _precision_problem(tf: ModuleType, precision: str, device: str) -> str | None:
    """Why this device cannot run ``precision`` in TensorFlow (None if it can).

    CPU: without the CPU features oneDNN needs, TF falls back to Eigen kernels (it logs so); for float16
    they made AlexNet's gradient 14x slower than float32 here, a cost no user would accept, so such a CPU
    is reported as lacking the precision rather than measured. GPU: TF32 and (in TensorFlow) bf16 need
    tensor cores. The CPU path never touches ``tf``."""
    needs = ONEDNN_CPU_FEATURES.get(precision)
    if device == "cpu" and needs is not None:
        if not cpu_features() & set(needs):
            return (f"TensorFlow's oneDNN has {precision} kernels only on CPUs with {', '.join(needs)}; "
                    "this CPU has none of them (TF would fall back to slow Eigen kernels)")
        return None
    if device == "gpu" and precision in ("tf32", "bf16"):
        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        major = (details.get("compute_capability") or (0, 0))[0]
        return tensor_core_problem(precision, major)
    return None


def keras_policy(precision: str) -> str:
    """The Keras dtype policy of ``precision``: ``float32``, or the mixed policy of its compute dtype
    (``mixed_bfloat16``, ``mixed_float16``: float32 variables, compute-dtype inputs and arithmetic)."""
    compute = get_precision(precision).compute
    return "float32" if compute == "float32" else f"mixed_{compute}"


def tf_float32(tf: ModuleType, x: Tensor) -> Tensor:
    """``x`` as float32 for the host (NumPy has no bfloat16)."""
    return tf.cast(x, tf.float32)


def _unscale(tf: ModuleType, grad: Any, factor: float) -> Any:
    """``grad`` times ``factor``; IndexedSlices keep their sparse form."""
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(grad.values * factor, grad.indices, grad.dense_shape)
    return grad * factor


def traced_dtypes(graph_fn: Any) -> dict[str, str]:
    """The dtypes a traced forward pass (a ConcreteFunction) computes with, for ``BuiltCase.dtypes``: the
    output's, and the output dtype of the graph's first convolution or matmul op."""
    seen = {"output": graph_fn.structured_outputs.dtype.name}
    operations = graph_fn.graph.get_operations()
    for op in operations:
        if op.type in CONTRACTION_OPS:
            seen["activation"] = op.outputs[0].dtype.name
            break
    return seen
