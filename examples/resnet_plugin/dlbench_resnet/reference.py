"""The ResNet in NumPy with manual backpropagation: the reference ``dlbench verify`` compares every framework to.

Its signature is :data:`dlbench.verify.reference.Network`: parameters by canonical name (float64 for the
reference, float32 for its noise calibration: the dtype of the parameters is the dtype computed in), the
phase, the batch, a MAC counter, whether to compute gradients and whether to analyse near-ties (not done here:
None). It returns the **forward pass's** output (batch norm by the running statistics) and the **gradient
pass's** loss and gradients (batch norm by the batch's statistics), as every adapter's ``evaluate`` does.
The convolutions reuse dlbench's reference convolution (im2col) with a zero bias.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlbench.verify.layers import Conv2D, Grads, MacCounter, Params, softmax_cross_entropy
from dlbench.workloads import Batch
from dlbench_resnet.workload import BLOCKS, EPSILON, STEM, Conv

Array = np.ndarray


def _conv(conv: Conv, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]:
    layer = Conv2D(conv.name, stride=conv.stride, pad=conv.pad)
    zero_bias = np.zeros(conv.cout, dtype=x.dtype)
    y, cache = layer.forward(x, {**params, f"{conv.name}.bias": zero_bias}, macs)
    return y, (layer, cache)


def _conv_backward(conv: Conv, dy: Array, cache: Any, params: Params, grads: Grads) -> Array:
    layer, inner = cache
    scratch: Grads = {}
    dx = layer.backward(dy, inner, {**params, f"{conv.name}.bias": np.zeros(conv.cout, dy.dtype)}, scratch, True)
    grads[f"{conv.name}.kernel"] = scratch[f"{conv.name}.kernel"]  # the zero bias's gradient is dropped
    assert dx is not None
    return dx


def _bn(name: str, x: Array, params: Params, training: bool) -> tuple[Array, Any]:
    gamma, beta = params[f"{name}.gamma"], params[f"{name}.beta"]
    if training:
        mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # the batch's, biased variance
    else:
        mean, var = params[f"{name}.mean"], params[f"{name}.var"]
    inv_std = 1.0 / np.sqrt(var + EPSILON)
    xhat = (x - mean) * inv_std
    return xhat * gamma + beta, (xhat, inv_std)


def _bn_backward(name: str, dy: Array, cache: Any, params: Params, grads: Grads) -> Array:
    """Training-mode batch norm: the batch statistics depend on the input, hence the two correction terms."""
    xhat, inv_std = cache
    axes = (0, 1, 2)
    grads[f"{name}.gamma"] = (dy * xhat).sum(axis=axes)
    grads[f"{name}.beta"] = dy.sum(axis=axes)
    dxhat = dy * params[f"{name}.gamma"]
    m = dy.shape[0] * dy.shape[1] * dy.shape[2]
    return inv_std / m * (m * dxhat - dxhat.sum(axis=axes) - xhat * (dxhat * xhat).sum(axis=axes))


def _conv_bn(conv: Conv, x: Array, params: Params, macs: MacCounter, training: bool) -> tuple[Array, Any]:
    y, conv_cache = _conv(conv, x, params, macs)
    z, bn_cache = _bn(conv.bn, y, params, training)
    return z, (conv_cache, bn_cache)


def _conv_bn_backward(conv: Conv, dz: Array, cache: Any, params: Params, grads: Grads) -> Array:
    conv_cache, bn_cache = cache
    return _conv_backward(conv, _bn_backward(conv.bn, dz, bn_cache, params, grads), conv_cache, params, grads)


def _forward(params: Params, x: Array, macs: MacCounter, training: bool) -> tuple[Array, list[Any]]:
    """Logits and the caches of every step (for the backward pass)."""
    caches: list[Any] = []
    z, cache = _conv_bn(STEM, x, params, macs, training)
    h = np.maximum(z, 0.0)
    caches.append((cache, z))
    for block in BLOCKS:
        a, c1 = _conv_bn(block.conv1, h, params, macs, training)
        r = np.maximum(a, 0.0)
        b, c2 = _conv_bn(block.conv2, r, params, macs, training)
        if block.projection is not None:
            s, cp = _conv_bn(block.projection, h, params, macs, training)
        else:
            s, cp = h, None
        total = b + s
        h = np.maximum(total, 0.0)
        caches.append((c1, a, c2, cp, total))
    pooled = h.mean(axis=(1, 2))
    macs.add(params["fc.kernel"].size)
    logits = pooled @ params["fc.kernel"] + params["fc.bias"]
    caches.append((h.shape, pooled))
    return logits, caches


def _backward(params: Params, dlogits: Array, caches: list[Any], grads: Grads) -> None:
    shape, pooled = caches[-1]
    grads["fc.kernel"] = pooled.T @ dlogits
    grads["fc.bias"] = dlogits.sum(axis=0)
    dh = np.broadcast_to((dlogits @ params["fc.kernel"].T)[:, None, None, :] / (shape[1] * shape[2]), shape)
    for block, (c1, a, c2, cp, total) in zip(reversed(BLOCKS), reversed(caches[1:-1]), strict=True):
        dtotal = dh * (total > 0)
        dr = _conv_bn_backward(block.conv2, dtotal, c2, params, grads)
        dh_main = _conv_bn_backward(block.conv1, dr * (a > 0), c1, params, grads)
        dh_short = dtotal if block.projection is None else \
            _conv_bn_backward(block.projection, dtotal, cp, params, grads)
        dh = dh_main + dh_short
    stem_cache, z = caches[0]
    _conv_bn_backward(STEM, dh * (z > 0), stem_cache, params, grads)


def reference(params: Params, phase: str, batch: Batch, macs: MacCounter, gradients: bool,
              ties: bool) -> tuple[Array, float, Grads, None]:
    """(inference logits, training loss, training gradients of every trained parameter, no tie analysis)."""
    x = np.asarray(batch.x)
    output, _ = _forward(params, x, macs, training=False)  # the forward pass: the one the MACs are counted of
    logits, caches = _forward(params, x, MacCounter(), training=True)
    loss, dlogits = softmax_cross_entropy(logits, np.asarray(batch.y))
    grads: Grads = {}
    if gradients:
        _backward(params, dlogits, caches, grads)
    return output, loss, grads, None
