"""The canonical weights as TensorFlow variables, and the gradients back in canonical shape.

The canonical layout of ``docs/workloads.md`` is TensorFlow's own, so loading is a plain float32 copy into a
``tf.Variable`` and the gradients come back in the same shapes. The Keras variants load the same weights into
the variables of their layers; only the Keras attention kernels differ in shape (a reshape, no permutation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from dlbench.frameworks.base import BuildRequest
from dlbench.frameworks.tensorflow.runtime import Tensor, Variable


def canonical_variables(tf: ModuleType, request: BuildRequest) -> dict[str, Variable]:
    """One float32 ``tf.Variable`` per parameter the phase reads, trainable exactly when the phase trains it."""
    phase = request.workload.phase(request.phase)
    return {
        name: tf.Variable(
            np.asarray(request.weights[name], dtype=np.float32),
            trainable=name in phase.trainable,
            name=name,
        )
        for name in phase.reads
    }


def bind_keras_lstm(layer: Any, weights: Mapping[str, np.ndarray]) -> dict[str, Variable]:
    """Load the canonical ``lstm.*`` weights into a built ``keras.layers.LSTM``; return the tf.Variables it
    reads, by canonical name. Its kernel ``[in, 4H]``, recurrent kernel ``[H, 4H]`` and bias ``[4H]`` have the
    canonical shapes and gate order (i, f, c, o), so the weights load unchanged."""
    variables: dict[str, Variable] = {}
    for name, variable in (("input_kernel", layer.cell.kernel), ("recurrent_kernel", layer.cell.recurrent_kernel),
                           ("bias", layer.cell.bias)):
        variable.assign(np.asarray(weights[f"lstm.{name}"], np.float32))
        variables[f"lstm.{name}"] = variable.value
    return variables


def bind_keras_attention(mha: Any, weights: Mapping[str, np.ndarray], prefix: str) -> dict[str, Variable]:
    """Load layer ``prefix``'s canonical Q, K, V, O weights into a built ``keras.layers.MultiHeadAttention``;
    return the tf.Variables it reads, by canonical name. Its ``EinsumDense`` kernels ``[256, 4, 64]`` and
    ``[4, 64, 256]`` are the canonical ``[256, 256]`` kernels reshaped (heads are consecutive blocks of 64
    columns), and :func:`canonical_gradients` reshapes their gradients back the same way."""
    variables: dict[str, Variable] = {}
    for part, layer in (("query", mha.query_dense), ("key", mha.key_dense), ("value", mha.value_dense),
                        ("output", mha.output_dense)):
        for kind in ("kernel", "bias"):
            variable = getattr(layer, kind)
            name = f"{prefix}.attn.{part}.{kind}"
            variable.assign(np.reshape(np.asarray(weights[name], np.float32), variable.shape))
            variables[name] = variable.value
    return variables


def canonical_gradients(names: Sequence[str], grads: Sequence[Tensor],
                        shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Dense gradients (IndexedSlices already converted to tensors) on the host, by canonical name and in
    canonical shape."""
    return {name: np.asarray(g.numpy()).reshape(shapes[name]) for name, g in zip(names, grads, strict=True)}
