"""The building blocks of the JAX networks: matmul, dense, convolution, pools, dropout, losses, layer norm,
GELU and attention. Pure functions of arrays; jax is imported inside them because the package must stay
import-free (they run only while JAX traces).

Every contraction casts its input to the kernel's dtype and accumulates in float32, rounding once: under mixed
precision the kernels are bf16/fp16, in float32 every cast is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from dlbench.workloads import DROPOUT_RATE
from dlbench.workloads.definitions import LAYER_NORM_EPSILON, MASK_VALUE

if TYPE_CHECKING:
    import jax

    Array = jax.Array
else:
    Array = Any

Params = Mapping[str, Array]
Inputs = tuple[Array, ...]
PoolFn = Callable[[Array], Array]

CONV_DIMS = ("NHWC", "HWIO", "NHWC")


def matmul(x: Array, kernel: Array) -> Array:
    """``x @ kernel`` in the kernel's dtype (the input is cast to it, as Flax's ``promote_dtype`` does), with
    float32 accumulation: under mixed precision the operands are bf16/fp16, the products summed in float32
    and the result rounded back once. In float32 every cast is a no-op."""
    import jax.numpy as jnp

    x = x.astype(kernel.dtype)
    return jnp.matmul(x, kernel, preferred_element_type=jnp.float32).astype(kernel.dtype)


def dense(params: Params, name: str, x: Array) -> Array:
    import jax.numpy as jnp

    kernel = params[f"{name}.kernel"]
    out = jnp.matmul(x.astype(kernel.dtype), kernel, preferred_element_type=jnp.float32)
    return (out + params[f"{name}.bias"]).astype(kernel.dtype)  # bias added before the one rounding


def conv(params: Params, name: str, x: Array, stride: int = 1, pad: int = 0) -> Array:
    """NHWC input, HWIO kernel (the canonical layout, so the kernel is used as stored); accumulation and
    bias in float32, as in :func:`dense`."""
    import jax.numpy as jnp
    from jax import lax

    kernel = params[f"{name}.kernel"]
    out = lax.conv_general_dilated(
        x.astype(kernel.dtype), kernel, (stride, stride), [(pad, pad), (pad, pad)], dimension_numbers=CONV_DIMS,
        preferred_element_type=jnp.float32,
    )
    return (out + params[f"{name}.bias"]).astype(kernel.dtype)


def max_pool_reshape_2x2(x: Array) -> Array:
    """Non-overlapping 2x2/2 max pool as reshape + max: its gradient is a cheap select, unlike the
    scatter that reduce_window's gradient lowers to on CPU."""
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def max_pool_window(x: Array, size: int, stride: int) -> Array:
    """Max pool over ``size`` x ``size`` windows with ``stride`` (valid padding) via ``lax.reduce_window``."""
    from jax import lax

    init = np.array(-np.inf, x.dtype)  # a concrete constant: JAX then knows the max monoid (and its gradient)
    return lax.reduce_window(x, init, lax.max, (1, size, size, 1), (1, stride, stride, 1), "VALID")


def max_pool_window_2x2(x: Array) -> Array:
    return max_pool_window(x, 2, 2)


def dropout(x: Array, key: Array | None, rate: float = DROPOUT_RATE) -> Array:
    """Inverted dropout; ``key`` None means inference (identity)."""
    if key is None:
        return x
    import jax
    import jax.numpy as jnp

    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def cross_entropy(logits: Array, labels: Array) -> Array:
    """Sparse softmax cross-entropy, mean over the batch; softmax and loss in float32 in every precision."""
    import jax
    import jax.numpy as jnp

    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


def reconstruction_loss(reconstruction: Array, target: Array) -> Array:
    """The autoencoder pretraining loss of docs/workloads.md: sum((x' - x)^2) / (2 * batch)."""
    import jax.numpy as jnp

    diff = reconstruction.astype(jnp.float32) - target.astype(jnp.float32)
    return jnp.sum(diff**2) / (2.0 * target.shape[0])


def layer_norm(params: Params, name: str, x: Array) -> Array:
    """Layer norm over the last axis with the canonical epsilon (1e-5)."""
    import jax.numpy as jnp
    from jax import lax

    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    variance = jnp.mean(jnp.square(centred), axis=-1, keepdims=True)
    return centred * lax.rsqrt(variance + LAYER_NORM_EPSILON) * params[f"{name}.gamma"] + params[f"{name}.beta"]


def gelu(x: Array) -> Array:
    """Exact (erf) GELU. ``jax.nn.gelu`` defaults to the tanh approximation: ``approximate=False`` is needed."""
    import jax

    return jax.nn.gelu(x, approximate=False)


def fused_attention(q: Array, k: Array, v: Array, keep: Array) -> Array:
    """``jax.nn.dot_product_attention`` on ``[N, T, heads, head_dim]`` with the boolean key-padding mask
    ``[N, 1, 1, T]`` (True = attend); its default scale is 1/sqrt(head_dim)."""
    import jax

    return jax.nn.dot_product_attention(q, k, v, mask=keep)


def plain_attention(q: Array, k: Array, v: Array, keep: Array) -> Array:
    """Einsum, masked softmax over the keys, einsum; the same ``[N, T, heads, head_dim]`` layout. Both
    products accumulate in float32 and round once to the operands' dtype; the softmax is float32 in every
    precision and its probabilities are cast back for the second product (no-ops in float32)."""
    import jax
    import jax.numpy as jnp

    f32 = jnp.float32
    scores = jnp.einsum("nthd,nshd->nhts", q, k, preferred_element_type=f32).astype(q.dtype)
    scores = scores / jnp.sqrt(jnp.asarray(q.shape[-1], q.dtype))
    probs = jax.nn.softmax(jnp.where(keep, scores, MASK_VALUE).astype(f32), axis=-1).astype(v.dtype)
    return jnp.einsum("nhts,nshd->nthd", probs, v, preferred_element_type=f32).astype(v.dtype)
