"""The transformer classifier as TF ops, with its exact GELU and its plain (``tf.nn``) attention; the
``keras_attention`` variant runs ``keras.layers.MultiHeadAttention`` instead."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from dlbench.errors import DlbenchError
from dlbench.frameworks.base import BuildRequest
from dlbench.frameworks.tensorflow.bindings import bind_keras_attention
from dlbench.frameworks.tensorflow.networks import _Network
from dlbench.frameworks.tensorflow.precision import keras_policy
from dlbench.frameworks.tensorflow.runtime import Feeds, Tensor
from dlbench.workloads import Batch, get_workload
from dlbench.workloads.definitions import LAYER_NORM_EPSILON, MASK_VALUE


def gelu(tf: ModuleType, x: Tensor) -> Tensor:
    """Exact (erf) GELU; ``tf.nn.gelu``'s default is already ``approximate=False``, said explicitly."""
    return tf.nn.gelu(x, approximate=False)


def plain_attention(tf: ModuleType, q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
    """``[N, heads, T, head_dim]`` projections: matmul, additive key-padding bias, softmax over the keys,
    matmul. TensorFlow has no fused attention op of its own; this is what ``tf.nn`` users write. Under mixed
    precision the scores are computed in the compute dtype and the mask, the softmax and its normalisation
    in float32 (the float32 ``bias``); the probabilities are cast back for the second product. In float32
    the casts are no-ops."""
    scale = 1.0 / float(np.sqrt(int(q.shape[-1])))
    scores = tf.cast(tf.matmul(q, k, transpose_b=True) * tf.cast(scale, q.dtype), tf.float32) + bias
    return tf.matmul(tf.cast(tf.nn.softmax(scores, axis=-1), v.dtype), v)


class _Transformer(_Network):
    """Pre-LN encoder classifier. The residual stream is kept as ``[N*T, D]`` so that every projection is
    one 2-D MatMul + BiasAdd (what Grappler fuses); it is viewed as ``[N, heads, T, head_dim]`` only for
    the attention. The key-padding mask is an additive bias of -1e9 on padded keys. The embedding gradient
    is TF's ``IndexedSlices``, as for the LSTM.

    Mixed precision: the embeddings, the residual stream, the layer norms (statistics and output) and the
    pooling are float32; each projection casts its input and variables to the compute dtype (``dense``),
    and its output is cast back to float32 where it joins the residual stream. That is the recipe PyTorch's
    autocast produces for the same code, so all three frameworks compute the same mixed function."""

    def feed_arrays(self, batch: Batch) -> tuple[np.ndarray, ...]:
        if batch.mask is None:
            raise DlbenchError("the transformer workload needs a batch with sequence lengths")
        return batch.x, batch.mask, batch.y

    def layer_norm(self, x: Tensor, name: str) -> Tensor:
        """Float32 in every precision: ``x`` is the float32 residual stream, gamma and beta float32."""
        tf, v = self.tf, self.variables
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return tf.nn.batch_normalization(x, mean, variance, v[f"{name}.beta"], v[f"{name}.gamma"],
                                         LAYER_NORM_EPSILON)

    def __init__(self, tf: ModuleType, request: BuildRequest) -> None:
        super().__init__(tf, request)
        self.keras_attention: dict[str, Any] = {}
        if request.variant == "keras_attention":
            self._use_keras_attention(request)

    def _use_keras_attention(self, request: BuildRequest) -> None:
        """One ``keras.layers.MultiHeadAttention`` per layer, its Q, K, V, O variables loaded from the
        canonical ones: its ``EinsumDense`` kernels ``[256, 4, 64]`` and ``[4, 64, 256]`` are the canonical
        ``[256, 256]`` kernels reshaped (heads are consecutive blocks of 64 columns), and the gradients
        reshape back the same way. The tf.Variables it reads replace ours in ``variables``, so that the
        tape and the parameter count see them."""
        import keras  # noqa: PLC0415  (only in the worker, only for this variant)

        extra = request.workload.extra
        width, heads = extra["embed_dim"], extra["heads"]
        n, steps = request.batch.x.shape
        # Mixed precision the Keras way: a mixed policy (float32 variables, compute-dtype inputs and
        # arithmetic); Keras' dot-product attention computes its softmax in float32 whatever the policy.
        policy = keras_policy(request.precision)
        for i in range(extra["layers"]):
            mha = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=width // heads, name=f"layer{i}_mha",
                                                  dtype=policy)
            mha.build(query_shape=(n, steps, width), value_shape=(n, steps, width))
            self.variables.update(bind_keras_attention(mha, request.weights, f"layer{i}"))
            self.keras_attention[f"layer{i}"] = mha

    def attention_block(self, x: Tensor, prefix: str, n: int, steps: int, mask: Tensor, bias: Tensor) -> Tensor:
        """Projections, attention and output projection of one layer on the ``[N*T, D]`` stream."""
        tf = self.tf
        mha = self.keras_attention.get(prefix)
        if mha is not None:
            x3 = tf.reshape(x, [n, steps, -1])
            keep = tf.broadcast_to((mask > 0)[:, None, :], [n, steps, steps])  # [N, queries, keys]
            return tf.cast(tf.reshape(mha(x3, x3, attention_mask=keep), [n * steps, -1]), tf.float32)
        out = self.dense(self.attention(x, prefix, n, steps, bias), f"{prefix}.attn.output")
        return tf.cast(out, tf.float32)  # joins the float32 residual stream

    def attention(self, x: Tensor, prefix: str, n: int, steps: int, bias: Tensor) -> Tensor:
        tf = self.tf
        heads = get_workload("transformer").extra["heads"]

        def split(t: Tensor) -> Tensor:
            return tf.transpose(tf.reshape(t, [n, steps, heads, -1]), [0, 2, 1, 3])

        q, k, val = (split(self.dense(x, f"{prefix}.attn.{part}")) for part in ("query", "key", "value"))
        context = plain_attention(tf, q, k, val, bias)
        return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [n * steps, -1])

    def forward(self, feeds: Feeds, training: bool) -> Tensor:
        tf, v = self.tf, self.variables
        tokens, mask = feeds[0], feeds[1]
        n, steps = tokens.shape
        extra = get_workload("transformer").extra
        embedded = tf.nn.embedding_lookup(v["embedding.table"], tokens) + v["position.table"][:steps]
        h = tf.reshape(embedded, [n * steps, -1])
        bias = ((1.0 - mask) * MASK_VALUE)[:, None, None, :]
        for i in range(extra["layers"]):
            prefix = f"layer{i}"
            h = h + self.attention_block(self.layer_norm(h, f"{prefix}.ln1"), prefix, n, steps, mask, bias)
            hidden = gelu(tf, self.dense(self.layer_norm(h, f"{prefix}.ln2"), f"{prefix}.ff1"))
            h = h + tf.cast(self.dense(hidden, f"{prefix}.ff2"), tf.float32)
        final = tf.reshape(self.layer_norm(h, "final_ln"), [n, steps, -1])
        pooled = tf.reduce_sum(final * mask[:, :, None], axis=1) / tf.reduce_sum(mask, axis=1, keepdims=True)
        return self.dense(pooled, "classifier")
