"""What a traced TensorFlow graph tells about a case: its op types and the case traits derived from them."""

from __future__ import annotations

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


def case_traits(graph: Any, recurrent: bool) -> dict[str, str]:
    """The case traits (:meth:`dlbench.frameworks.base.BuiltCase.traits`) of a traced graph: ``layout`` of the
    convolutions as traced (``data_format``; on a GPU Grappler's layout optimizer may still run them as NCHW)
    and, for the LSTM, ``recurrence``: fused when cuDNN's RNN op is in the graph."""
    traits: dict[str, str] = {}
    for op in graph.get_operations():
        if op.type == "Conv2D":
            traits["layout"] = op.get_attr("data_format").decode()
            break
    if recurrent:
        fused = bool(graph_op_types(graph) & set(CUDNN_RNN_OPS))
        traits["recurrence"] = "fused" if fused else "unfused"
    return traits
