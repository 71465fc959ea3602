"""The building blocks of the NumPy reference: layers with a hand-written backward pass, and the losses.

Each layer's ``forward`` returns ``(output, cache)``; ``backward`` takes the output gradient and the cache,
stores parameter gradients in ``grads`` and returns the input gradient when asked. ``take`` cuts a cache
down to one sample, so that :mod:`dlbench.verify.ties` can backpropagate a single decision's effect.
All layouts are canonical: NHWC activations, HWIO kernels, ``[in, out]`` dense kernels.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import erf

from dlbench.workloads.definitions import LAYER_NORM_EPSILON, MASK_VALUE

Array = np.ndarray
Params = Mapping[str, Array]
Grads = dict[str, Array]


class MacCounter:
    """Accumulates multiply-accumulates per sample while the forward pass runs (layers add the count of one
    sample, computed from the shapes they really process)."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, macs: int) -> None:
        self.total += int(macs)


# ----------------------------------------------------------------------------------------------------------
# Elementwise pieces and the loss


def sigmoid(x: Array) -> Array:
    """Logistic sigmoid written through tanh: exact, and free of the overflow warnings of 1/(1+exp(-x))."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softmax_cross_entropy(logits: Array, labels: Array) -> tuple[float, Array]:
    """Mean softmax cross-entropy on integer labels and its gradient with respect to the logits."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = float(-log_probs[rows, labels].mean())
    dlogits = np.exp(log_probs)
    dlogits[rows, labels] -= 1.0
    return loss, dlogits / n


def reconstruction_loss(reconstruction: Array, target: Array) -> tuple[float, Array]:
    """``sum((x' - x)^2) / (2 * batch)`` and its gradient with respect to the reconstruction."""
    n = reconstruction.shape[0]
    diff = reconstruction - target
    return float((diff * diff).sum() / (2.0 * n)), diff / n


# ----------------------------------------------------------------------------------------------------------
# Layers of the two convolutional networks. Each forward returns (output, cache); backward takes the output
# gradient and the cache, stores parameter gradients in ``grads`` and returns the input gradient if asked.


class Layer(ABC):
    @abstractmethod
    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]: ...

    @abstractmethod
    def backward(
        self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool
    ) -> Array | None: ...

    @abstractmethod
    def take(self, cache: Any, sample: int) -> Any:
        """The cache of one sample (batch of 1), for backpropagating that sample alone."""


def _im2col(x: Array, kh: int, kw: int, stride: int) -> tuple[Array, int, int]:
    """Patches of an NHWC tensor as rows ``(n, oh, ow)`` x columns ``(i, j, c)``: the HWIO kernel's order."""
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # N, OH, OW, C, kh, kw
    n, oh, ow, c = windows.shape[:4]
    cols = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kh * kw * c)
    return cols, oh, ow


@dataclass(frozen=True)
class Conv2D(Layer):
    """Convolution with bias, NHWC input, HWIO kernel, symmetric zero padding."""

    name: str
    stride: int = 1
    pad: int = 0

    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]:
        kernel, bias = params[f"{self.name}.kernel"], params[f"{self.name}.bias"]
        kh, kw, cin, cout = kernel.shape
        if x.shape[-1] != cin:
            raise ValueError(f"{self.name}: input has {x.shape[-1]} channels, kernel expects {cin}")
        padded = np.pad(x, ((0, 0), (self.pad, self.pad), (self.pad, self.pad), (0, 0))) if self.pad else x
        cols, oh, ow = _im2col(padded, kh, kw, self.stride)
        y = cols @ kernel.reshape(-1, cout) + bias
        macs.add(oh * ow * cout * kh * kw * cin)
        return y.reshape(x.shape[0], oh, ow, cout), (cols, padded.shape)

    def backward(self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool) -> Array | None:
        cols, padded_shape = cache
        kernel = params[f"{self.name}.kernel"]
        kh, kw, cin, cout = kernel.shape
        n, oh, ow, _ = dy.shape
        flat = dy.reshape(-1, cout)
        grads[f"{self.name}.kernel"] = (cols.T @ flat).reshape(kernel.shape)
        grads[f"{self.name}.bias"] = flat.sum(axis=0)
        if not need_dx:
            return None
        dcols = (flat @ kernel.reshape(-1, cout).T).reshape(n, oh, ow, kh, kw, cin)
        dpadded = np.zeros(padded_shape, dtype=dy.dtype)
        s = self.stride
        for i in range(kh):
            for j in range(kw):
                dpadded[:, i : i + s * (oh - 1) + 1 : s, j : j + s * (ow - 1) + 1 : s, :] += dcols[
                    :, :, :, i, j, :
                ]
        if self.pad:
            p = self.pad
            return dpadded[:, p:-p, p:-p, :]
        return dpadded

    def take(self, cache: Any, sample: int) -> Any:
        cols, padded_shape = cache
        rows = cols.shape[0] // padded_shape[0]
        return cols[sample * rows : (sample + 1) * rows], (1, *padded_shape[1:])


@dataclass(frozen=True)
class Activation(Layer):
    kind: str  # "tanh" | "relu"

    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]:
        if self.kind == "tanh":
            y = np.tanh(x)
            return y, y
        if self.kind == "relu":
            return np.maximum(x, 0.0), x > 0
        raise ValueError(f"unknown activation {self.kind!r}")

    def backward(self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool) -> Array | None:
        if self.kind == "tanh":
            return dy * (1.0 - cache * cache)
        return dy * cache

    def take(self, cache: Any, sample: int) -> Any:
        return cache[sample : sample + 1]


@dataclass(frozen=True)
class MaxPool(Layer):
    """Valid max pooling (possibly overlapping). The gradient goes to the first maximum of each window."""

    size: int
    stride: int

    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]:
        k, s = self.size, self.stride
        windows = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]  # N, OH, OW, C, k, k
        flat = windows.reshape(*windows.shape[:4], k * k)
        arg = flat.argmax(axis=-1)
        y = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
        return y, (arg, x.shape)

    def backward(self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool) -> Array | None:
        arg, shape = cache
        k, s = self.size, self.stride
        _, oh, ow, _ = dy.shape
        dx = np.zeros(shape, dtype=dy.dtype)
        for index in range(k * k):
            i, j = divmod(index, k)
            dx[:, i : i + s * (oh - 1) + 1 : s, j : j + s * (ow - 1) + 1 : s, :] += np.where(
                arg == index, dy, 0.0
            )
        return dx

    def take(self, cache: Any, sample: int) -> Any:
        arg, shape = cache
        return arg[sample : sample + 1], (1, *shape[1:])


class Flatten(Layer):
    """NHWC feature map to vectors in H, W, C order: the canonical flatten order of ``docs/workloads.md``."""

    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]:
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool) -> Array | None:
        return dy.reshape(cache)

    def take(self, cache: Any, sample: int) -> Any:
        return (1, *cache[1:])


@dataclass(frozen=True)
class Dense(Layer):
    name: str

    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]:
        kernel, bias = params[f"{self.name}.kernel"], params[f"{self.name}.bias"]
        macs.add(kernel.shape[0] * kernel.shape[1])
        return x @ kernel + bias, x

    def backward(self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool) -> Array | None:
        grads[f"{self.name}.kernel"] = cache.T @ dy
        grads[f"{self.name}.bias"] = dy.sum(axis=0)
        return dy @ params[f"{self.name}.kernel"].T if need_dx else None

    def take(self, cache: Any, sample: int) -> Any:
        return cache[sample : sample + 1]


LENET: tuple[Layer, ...] = (
    Conv2D("conv1"),
    Activation("tanh"),
    MaxPool(2, 2),
    Conv2D("conv2"),
    Activation("tanh"),
    MaxPool(2, 2),
    Flatten(),
    Dense("fc1"),
    Activation("relu"),
    Dense("fc2"),
)

ALEXNET: tuple[Layer, ...] = (
    Conv2D("conv1", stride=4),
    Activation("relu"),
    MaxPool(3, 2),
    Conv2D("conv2", pad=2),
    Activation("relu"),
    MaxPool(3, 2),
    Conv2D("conv3", pad=1),
    Activation("relu"),
    Conv2D("conv4", pad=1),
    Activation("relu"),
    Conv2D("conv5", pad=1),
    Activation("relu"),
    MaxPool(3, 2),
    Flatten(),
    Dense("fc6"),
    Activation("relu"),
    Dense("fc7"),
    Activation("relu"),
    Dense("fc8"),
)


# ----------------------------------------------------------------------------------------------------------
# Pieces of the transformer encoder (docs/workloads.md): layer norm, exact GELU, masked multi-head attention.
# Plain functions over ``[N, T, D]`` arrays, each with its hand-written backward pass. The tests check every
# backward pass against central finite differences in float64 (tests/unit/test_verify_transformer.py).


def layer_norm(x: Array, gamma: Array, beta: Array) -> tuple[Array, Any]:
    """Normalise over the last axis with epsilon ``LAYER_NORM_EPSILON`` (1e-5; Keras's default is 1e-3)."""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    inv_std = 1.0 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + LAYER_NORM_EPSILON)
    normalised = centred * inv_std
    return normalised * gamma + beta, (normalised, inv_std)


def layer_norm_backward(dy: Array, cache: Any, gamma: Array) -> tuple[Array, Array, Array]:
    """(dx, dgamma, dbeta). With n = x / sigma: dx = (g - mean(g) - n mean(g n)) / sigma, g = dy * gamma."""
    normalised, inv_std = cache
    axes = tuple(range(dy.ndim - 1))
    dgamma = (dy * normalised).sum(axis=axes)
    dbeta = dy.sum(axis=axes)
    g = dy * gamma
    dx = inv_std * (
        g - g.mean(axis=-1, keepdims=True) - normalised * (g * normalised).mean(axis=-1, keepdims=True)
    )
    return dx, dgamma, dbeta


# Python floats, not NumPy scalars: a np.float64 scalar would promote the float32 calibration run to float64.
SQRT2 = math.sqrt(2.0)
SQRT_2PI = math.sqrt(2.0 * math.pi)


def gelu(x: Array) -> Array:
    """Exact GELU, ``x * Phi(x)`` with the normal CDF through erf (not the tanh approximation)."""
    return 0.5 * x * (1.0 + erf(x / SQRT2))


def gelu_backward(dy: Array, x: Array) -> Array:
    """d/dx x Phi(x) = Phi(x) + x phi(x)."""
    cdf = 0.5 * (1.0 + erf(x / SQRT2))
    pdf = np.exp(-0.5 * x * x) / SQRT_2PI
    return dy * (cdf + x * pdf)


def key_padding_bias(mask: Array) -> Array:
    """Additive score bias ``[N, 1, 1, T]``: ``MASK_VALUE`` on the padded *keys* (columns), 0 elsewhere, so
    that padded positions get probability 0 in every query's softmax."""
    return ((1.0 - mask) * MASK_VALUE)[:, None, None, :]


def attention_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)


def _split_heads(x: Array, heads: int) -> Array:
    n, t, d = x.shape
    return x.reshape(n, t, heads, d // heads).transpose(0, 2, 1, 3)  # heads = consecutive column blocks


def _merge_heads(x: Array) -> Array:
    n, h, t, dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(n, t, h * dh)


def attention(q: Array, k: Array, v: Array, bias: Array, heads: int) -> tuple[Array, Any]:
    """Scaled dot-product attention of ``[N, T, D]`` projections split into ``heads`` heads; ``bias`` is added
    to the scores before the softmax over keys. Returns the heads concatenated, ``[N, T, D]``."""
    qh, kh, vh = (_split_heads(a, heads) for a in (q, k, v))
    scale = attention_scale(qh.shape[-1])
    scores = (qh @ kh.transpose(0, 1, 3, 2)) * scale + bias
    scores = scores - scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    return _merge_heads(probs @ vh), (qh, kh, vh, probs, scale)


def attention_backward(dout: Array, cache: Any) -> tuple[Array, Array, Array]:
    """(dq, dk, dv) in ``[N, T, D]``. Softmax: ds = p * (dp - sum(dp * p)) over the key axis."""
    qh, kh, vh, probs, scale = cache
    heads = qh.shape[1]
    dctx = _split_heads(dout, heads)
    dprobs = dctx @ vh.transpose(0, 1, 3, 2)
    dvh = probs.transpose(0, 1, 3, 2) @ dctx
    dscores = probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True)) * scale
    dqh = dscores @ kh
    dkh = dscores.transpose(0, 1, 3, 2) @ qh
    return _merge_heads(dqh), _merge_heads(dkh), _merge_heads(dvh)
