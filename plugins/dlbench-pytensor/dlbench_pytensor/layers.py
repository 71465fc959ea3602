"""The building blocks of the PyTensor networks: dense layers, pools, dropout, losses, layer norm, GELU and
attention, as functions of symbolic PyTensor variables.

Everything here builds graph nodes; nothing computes. PyTensor's rewriter then fuses the element-wise chains
(``Composite`` ops) and turns the dot products into its BLAS ops, so a block is written the plain way and left
to the compiler, which is what a PyTensor user does. This module imports PyTensor at module level: only the
case builder imports it, inside a worker (never the adapter module that the parent process loads).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.tensor.random.utils import RandomStream

from dlbench.workloads import DROPOUT_RATE
from dlbench.workloads.definitions import LAYER_NORM_EPSILON, MASK_VALUE

Var = Any  # a pytensor TensorVariable (PyTensor's own types are not precise enough for mypy to help)
# Every constant is a float32 scalar: a Python float would be a float64 constant under PyTensor's default
# floatX and could promote a float32 graph to float64 (the precision check would then refuse the case).
F32 = np.float32
Params = Mapping[str, Var]


def dense(params: Params, name: str, x: Var) -> Var:
    """``x @ kernel + bias`` with the canonical ``[in, out]`` kernel, used as stored."""
    return pt.dot(x, params[f"{name}.kernel"]) + params[f"{name}.bias"]


def relu(x: Var) -> Var:
    """ReLU as ``maximum(x, 0)``: its gradient is 0 at 0 and below, as in the other frameworks."""
    return pt.maximum(x, F32(0.0))


def max_pool_2x2(x: Var) -> Var:
    """Non-overlapping 2x2/2 max pool of an NHWC map with even H and W, as a reshape and a max over the two
    window axes (PyTensor 3 ships no pooling op: Theano's ``pool_2d`` was removed)."""
    n, h, w, c = x.shape
    return x.reshape((n, h // 2, 2, w // 2, 2, c)).max(axis=(2, 4))


def max_pool_window(x: Var, size: int, stride: int, out_h: int, out_w: int) -> Var:
    """Max pool over ``size`` x ``size`` windows with ``stride`` (valid padding) of an NHWC map: the maximum
    of the ``size**2`` strided slices, one per window offset (AlexNet's overlapping 3x3/2 pools). ``out_h`` and
    ``out_w`` are the static output sizes, so that every slice has the output's shape."""
    result = None
    for i in range(size):
        for j in range(size):
            window = x[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride, :]
            result = window if result is None else pt.maximum(result, window)
    return result


def dropout(x: Var, stream: RandomStream | None, rate: float = DROPOUT_RATE) -> Var:
    """Inverted dropout; ``stream`` None means inference (identity). The stream's generator is a shared
    variable with a default update, so every call of the compiled function draws a fresh mask."""
    if stream is None:
        return x
    keep = pt.cast(stream.bernoulli(1.0 - rate, size=x.shape), "float32")
    return x * keep / F32(1.0 - rate)


def cross_entropy(logits: Var, labels: Var) -> Var:
    """Sparse softmax cross-entropy, mean over the batch."""
    log_probs = pt.special.log_softmax(logits, axis=-1)
    return -pt.mean(log_probs[pt.arange(labels.shape[0]), labels])


def reconstruction_loss(reconstruction: Var, target: Var) -> Var:
    """The autoencoder pretraining loss of docs/workloads.md: sum((x' - x)^2) / (2 * batch)."""
    return pt.sum(pt.sqr(reconstruction - target)) / pt.cast(2 * target.shape[0], "float32")


def layer_norm(params: Params, name: str, x: Var) -> Var:
    """Layer norm over the last axis with the canonical epsilon (1e-5)."""
    mean = pt.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    variance = pt.mean(pt.sqr(centred), axis=-1, keepdims=True)
    return centred / pt.sqrt(variance + F32(LAYER_NORM_EPSILON)) * params[f"{name}.gamma"] + params[f"{name}.beta"]


def gelu(x: Var) -> Var:
    """Exact (erf) GELU, written out: PyTensor has ``erf`` but no GELU of its own."""
    return F32(0.5) * x * (F32(1.0) + pt.erf(x / F32(math.sqrt(2.0))))


def attention(q: Var, k: Var, v: Var, keep: Var, head_dim: int) -> Var:
    """Scaled dot-product attention on ``[N*heads, T, head_dim]`` operands: batched matmul, the padded keys'
    scores replaced by -1e9 (``keep`` ``[N*heads, 1, T]``, 1 = attend), softmax over the keys, batched matmul.
    The three-dimensional operands let PyTensor rewrite both products into its ``BatchedDot``."""
    scale = F32(1.0 / math.sqrt(float(head_dim)))
    scores = pt.matmul(q, k.transpose(0, 2, 1)) * scale
    scores = pt.switch(keep > 0, scores, F32(MASK_VALUE))
    return pt.matmul(pt.special.softmax(scores, axis=-1), v)
