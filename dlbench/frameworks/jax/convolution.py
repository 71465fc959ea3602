"""The 2-D convolution of the conv nets computed four ways, each written with JAX's own array ops
(``docs/convolution.md``): XLA's convolution (``native``), and the three families of the literature, whose
gradients are ``jax.grad`` of this code (never a hand-written backward).

Layouts are the canonical ones throughout: input ``[N, H, W, Cin]`` (NHWC), kernel ``[k, k, Cin, Cout]`` (HWIO),
bias ``[Cout]``. Convolution in deep learning is cross-correlation (the kernel is not flipped); every
algorithm computes exactly that. Every algorithm follows the recipe of :func:`dlbench.frameworks.jax.layers.conv`:
the input is cast to the kernel's dtype, the products are summed in float32, the bias is added in float32 and
the result is rounded once to the kernel's dtype (under bf16/fp16 the operands are low precision; in float32
every cast is a no-op).

- ``im2col``: zero padding, then the ``k*k`` strided slices of the padded input (one per kernel position)
  stacked into the patch matrix ``[N*OH*OW, k*k*Cin]``, one matrix multiply with the kernel reshaped to
  ``[k*k*Cin, Cout]``. The patches are cut with ``lax.slice`` and ``jnp.stack``, not with
  ``lax.conv_general_dilated_patches``: that function is itself a convolution in XLA (an identity kernel
  convolved with the input), so XLA's convolution, the very thing this algorithm replaces, would still run.
- ``direct``: the sum over the ``k*k`` kernel positions of the shifted (strided) slice of the padded input
  times that position's ``[Cin, Cout]`` weight matrix: ``k*k`` matrix multiplies, no patch matrix.
- ``fft``: zero padding by the layer's padding, ``jnp.fft.rfft2`` of the input and of the kernel at the padded
  input's size, the product with the *conjugate* of the kernel's transform (correlation, not convolution),
  summed over the input channels in the frequency domain (an einsum over Cin), ``jnp.fft.irfft2``, the valid
  ``(Hp-k+1) x (Wp-k+1)`` corner of the circular result cropped; a strided layer subsamples that full
  stride-1 result. The transforms run in float32 in every precision: JAX's FFT has no bf16 or fp16 dtype, so
  under bf16/fp16 the operands are cast to float32 for the transforms and the result is rounded back to the
  case's dtype (after the float32 bias), like every other algorithm's.
"""

from __future__ import annotations

from dlbench.cases.spec import CONV_ALGORITHMS, NATIVE_CONV
from dlbench.frameworks.jax.layers import CONV_DIMS, Array, Params, conv

# The name scope of each non-native algorithm's ops: it names them in the HLO metadata, so that the
# conv_backend trait can tell a convolution's matrix multiplies from those of the dense layers.
SCOPE_PREFIX = "dlbench_conv_"


def out_size(size: int, k: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis (valid after ``padding`` zeros on each side)."""
    return (size + 2 * padding - k) // stride + 1


def _pad(x: Array, padding: int) -> Array:
    import jax.numpy as jnp

    if padding == 0:
        return x
    return jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))


def _window(xp: Array, i: int, j: int, oh: int, ow: int, stride: int) -> Array:
    """The slice of the padded input that kernel position (i, j) meets: rows i, i+s, ..., i+s*(oh-1)."""
    from jax import lax

    n, _, _, cin = xp.shape
    return lax.slice(xp, (0, i, j, 0), (n, i + stride * (oh - 1) + 1, j + stride * (ow - 1) + 1, cin),
                     (1, stride, stride, 1))


def native(x: Array, kernel: Array, stride: int, padding: int) -> Array:
    """XLA's convolution (``lax.conv_general_dilated``), float32 accumulation: what the networks ran before the
    algorithm axis existed, unchanged."""
    import jax.numpy as jnp
    from jax import lax

    return lax.conv_general_dilated(
        x, kernel, (stride, stride), [(padding, padding), (padding, padding)], dimension_numbers=CONV_DIMS,
        preferred_element_type=jnp.float32,
    )


def im2col(x: Array, kernel: Array, stride: int, padding: int) -> Array:
    """Patch matrix ``[N*OH*OW, k*k*Cin]`` (kernel positions row-major, then channels: the HWIO kernel's own
    order) times the kernel as ``[k*k*Cin, Cout]``."""
    import jax.numpy as jnp

    k, _, cin, cout = kernel.shape
    n, h, w, _ = x.shape
    oh, ow = out_size(h, k, stride, padding), out_size(w, k, stride, padding)
    xp = _pad(x, padding)
    patches = jnp.stack([_window(xp, i, j, oh, ow, stride) for i in range(k) for j in range(k)], axis=3)
    matrix = patches.reshape(n * oh * ow, k * k * cin)  # [N*OH*OW, k*k, Cin] flattened (i, j, c)
    out = jnp.matmul(matrix, kernel.reshape(k * k * cin, cout), preferred_element_type=jnp.float32)
    return out.reshape(n, oh, ow, cout)


def direct(x: Array, kernel: Array, stride: int, padding: int) -> Array:
    """``sum_{i,j} window(i, j) @ kernel[i, j]``: ``k*k`` matrix multiplies of ``[N, OH, OW, Cin]`` by
    ``[Cin, Cout]``, accumulated in float32."""
    import jax.numpy as jnp

    k = kernel.shape[0]
    _, h, w, _ = x.shape
    oh, ow = out_size(h, k, stride, padding), out_size(w, k, stride, padding)
    xp = _pad(x, padding)
    out = None
    for i in range(k):
        for j in range(k):
            term = jnp.matmul(_window(xp, i, j, oh, ow, stride), kernel[i, j], preferred_element_type=jnp.float32)
            out = term if out is None else out + term
    assert out is not None  # k >= 1
    return out


def fft(x: Array, kernel: Array, stride: int, padding: int) -> Array:
    """Correlation by the FFT at the padded input's size: ``irfft2(sum_c X_c * conj(K_c,o))``, then the valid
    corner, subsampled by ``stride``. Float32 transforms in every precision (see the module docstring)."""
    import jax.numpy as jnp
    from jax import lax

    k = kernel.shape[0]
    xp = _pad(x.astype(jnp.float32), padding)
    n, hp, wp, _ = xp.shape
    cout = kernel.shape[3]
    spectrum = jnp.fft.rfft2(xp, axes=(1, 2))  # [N, Hp, Wp//2+1, Cin]
    kernel_spectrum = jnp.fft.rfft2(kernel.astype(jnp.float32), s=(hp, wp), axes=(0, 1))  # [Hp, Wp//2+1, Cin, Cout]
    product = jnp.einsum("nhwc,hwco->nhwo", spectrum, jnp.conj(kernel_spectrum))
    full = jnp.fft.irfft2(product, s=(hp, wp), axes=(1, 2))  # circular correlation, [N, Hp, Wp, Cout]
    oh, ow = (hp - k) // stride + 1, (wp - k) // stride + 1
    return lax.slice(full, (0, 0, 0, 0), (n, stride * (oh - 1) + 1, stride * (ow - 1) + 1, cout),
                     (1, stride, stride, 1))


ALGORITHMS = {NATIVE_CONV: native, "im2col": im2col, "direct": direct, "fft": fft}
assert tuple(sorted(ALGORITHMS)) == tuple(sorted(CONV_ALGORITHMS))


def conv2d(x: Array, kernel: Array, bias: Array, stride: int = 1, padding: int = 0,
           algorithm: str = NATIVE_CONV) -> Array:
    """The convolution of ``x`` (NHWC) with ``kernel`` (HWIO) plus ``bias``, by ``algorithm``: the input cast to
    the kernel's dtype, float32 sums, the bias added in float32, one rounding to the kernel's dtype."""
    import jax

    try:
        compute = ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unknown convolution algorithm {algorithm!r}; algorithms: {', '.join(ALGORITHMS)}") from None
    x = x.astype(kernel.dtype)
    if algorithm == NATIVE_CONV:
        out = compute(x, kernel, stride, padding)
    else:
        with jax.named_scope(f"{SCOPE_PREFIX}{algorithm}"):
            out = compute(x, kernel, stride, padding)
    return (out + bias).astype(kernel.dtype)


def conv_layer(params: Params, name: str, x: Array, stride: int = 1, padding: int = 0,
               algorithm: str = NATIVE_CONV) -> Array:
    """The networks' convolution ``name`` (``<name>.kernel``, ``<name>.bias``) by ``algorithm``; ``native`` is
    :func:`dlbench.frameworks.jax.layers.conv` itself, the code path the networks ran before the algorithm
    axis existed."""
    if algorithm == NATIVE_CONV:
        return conv(params, name, x, stride=stride, pad=padding)
    return conv2d(x, params[f"{name}.kernel"], params[f"{name}.bias"], stride, padding, algorithm)
