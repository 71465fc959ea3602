"""What a traced TensorFlow graph tells about a case: its op types and the case traits derived from them, and
which library computes TensorFlow's native convolutions in this process (oneDNN, Eigen, cuDNN or XLA)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

# Op types of the contractions (convolutions and matmuls): the first one's output dtype is the dtype the
# layers compute in (see :func:`dlbench.frameworks.tensorflow.precision.traced_dtypes`).
CONTRACTION_OPS = ("Conv2D", "MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum")
# Op types of cuDNN's fused RNN kernel in a traced graph: their presence is what makes an LSTM "fused".
CUDNN_RNN_OPS = ("CudnnRNN", "CudnnRNNV2", "CudnnRNNV3")


def graph_op_types(graph: Any) -> set[str]:
    """The op types of a traced graph and of every function it calls (loop bodies, Keras' cuDNN branch)."""
    types = {op.type for op in graph.get_operations()}
    for function in getattr(graph, "_functions", {}).values():
        definition = getattr(function, "definition", None)
        if definition is not None:
            types.update(node.op for node in definition.node_def)
    return types


def case_traits(graph: Any, recurrent: bool, convolutional: bool = False) -> dict[str, str]:
    """The case traits (:meth:`dlbench.frameworks.base.BuiltCase.traits`) of a traced graph: ``layout`` of the
    convolutions as traced (``data_format``; on a GPU Grappler's layout optimizer may still run them as NCHW;
    the im2col, fft and direct algorithms, which leave no Conv2D op, work on NHWC) and, for the LSTM,
    ``recurrence``: fused when cuDNN's RNN op is in the graph."""
    traits: dict[str, str] = {}
    for op in graph.get_operations():
        if op.type == "Conv2D":
            traits["layout"] = op.get_attr("data_format").decode()
            break
    else:
        if convolutional:
            traits["layout"] = "NHWC"
    if recurrent:
        fused = bool(graph_op_types(graph) & set(CUDNN_RNN_OPS))
        traits["recurrence"] = "fused" if fused else "unfused"
    return traits


# The prefix of the op types that TensorFlow's oneDNN graph rewrite (MklLayoutRewritePass) puts in place of
# Conv2D, _FusedConv2D and their gradients (_MklNativeConv2D, _MklNativeFusedConv2D, ...); without it the CPU
# keeps the Eigen kernels of Conv2D and _FusedConv2D.
ONEDNN_OP_PREFIX = "_Mkl"


def native_conv_backend(tf: ModuleType, device_name: str, dtype: Any, jit_compile: bool) -> str:
    """What computes a native convolution (and its two gradients) of ``dtype`` in this process: ``xla`` for
    an XLA-compiled case; otherwise read from the graph TensorFlow really executes: a probe convolution with
    bias runs once in a ``tf.function`` with run metadata on, and the op types of its *partition graphs* (the
    graphs after every rewrite, as the executor runs them) tell ``onednn`` (``_Mkl*`` ops: the rewrite took,
    which needs oneDNN on, ``TF_ENABLE_ONEDNN_OPTS`` not 0, and a CPU with oneDNN kernels for ``dtype``),
    ``cudnn`` (convolutions placed on a GPU) or ``eigen`` (Conv2D kept on the CPU). The probe is 1x5x5x2, so
    it warms no cache of the case's shapes, and runs once per process, device and dtype. Eager ops go through
    TF's eager oneDNN rewrite, which applies under the same conditions; ``unknown`` if the run metadata cannot
    be read."""
    if jit_compile:
        return "xla"
    key = (device_name, str(dtype))
    if key not in _BACKENDS:  # a property of the process: TF reads its switches once, at import
        _BACKENDS[key] = _probe_backend(tf, device_name, dtype)
    return _BACKENDS[key]


_BACKENDS: dict[tuple[str, str], str] = {}


def _probe_backend(tf: ModuleType, device_name: str, dtype: Any) -> str:
    try:
        from tensorflow.python.eager import context  # noqa: PLC0415  (run metadata has no public TF 2 API)

        runtime = context.context()
    except (ImportError, AttributeError):
        return "unknown"

    def probe(x: Any, w: Any, b: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch([x, w, b])
            y = tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "VALID"), b)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, w, b])

    with tf.device(device_name):
        args = (tf.ones([1, 5, 5, 2], dtype), tf.ones([3, 3, 2, 2], dtype), tf.ones([2], dtype))
        function = tf.function(probe, autograph=False).get_concrete_function(*args)
        runtime.enable_run_metadata()
        try:
            function(*args)
            metadata = runtime.export_run_metadata()
        finally:
            runtime.disable_run_metadata()
    nodes = [node for graphs in metadata.function_graphs for partition in graphs.partition_graphs
             for node in partition.node if "Conv2D" in node.op]
    if any(node.op.startswith(ONEDNN_OP_PREFIX) for node in nodes):
        return "onednn"
    if any("GPU" in node.device.upper() for node in nodes):
        return "cudnn"
    return "eigen" if nodes else "unknown"
