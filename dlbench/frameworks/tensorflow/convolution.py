"""The convolution algorithms of the ``--conv`` axis, written with TensorFlow's own tensor ops in NHWC with HWIO
kernels (TensorFlow's layout, and the canonical one). Every algorithm computes the cross-correlation of deep
learning, ``y[n, i, j, o] = b[o] + sum_{a, b, c} x_pad[n, s*i + a, s*j + b, c] * w[a, b, c, o]``, and its gradient
is TensorFlow's automatic derivative of the code below (no hand-written backward):

- ``native``: ``tf.nn.conv2d`` (oneDNN or Eigen on a CPU, cuDNN on a GPU, XLA's convolution under XLA).
- ``im2col``: the zero-padded input unfolded by ``tf.image.extract_patches`` into the patch matrix
  ``[N*OH*OW, k*k*Cin]`` (its depth is ordered kh, kw, cin: the row order of the HWIO kernel reshaped to
  ``[k*k*Cin, Cout]``), one ``tf.matmul``, reshaped back. Its gradient scatters the patch gradients back
  (col2im) with an ``unsorted_segment_sum``, TensorFlow's registered gradient of the patch extraction.
- ``fft``: input (zero-padded by the layer's padding) and kernel (zero-padded to the input's size) moved to
  ``[.., C, H, W]`` (``tf.signal`` transforms the last two axes) and transformed by ``rfft2d``; the product with
  the *conjugate* kernel spectrum (cross-correlation, not convolution) summed over the input channels by one
  ``einsum`` (a complex matmul per frequency); ``irfft2d``; the valid ``(Hp-k+1) x (Wp-k+1)`` corner of the
  circular result cropped (no wrap-around reaches it) and, for a strided layer, every ``stride``-th row and
  column of that stride-1 result kept. ``tf.signal`` has no bfloat16 or float16 FFT, so in those precisions the operands
  (already rounded to the case's dtype, as every algorithm's) are cast to float32 for the transforms, and the
  result is cast back to the case's dtype with the bias (see Precision below).
- ``direct``: for each of the ``k*k`` kernel positions, the shifted (strided) window of the padded input
  ``[N*OH*OW, Cin]`` times that position's ``[Cin, Cout]`` weight matrix, accumulated: ``k*k`` matmuls and no
  patch matrix, so the forward pass holds one window at a time (the gradient pass keeps the windows its
  kernel gradient needs, as every autodiff does).

Precision: im2col and direct compute in the case's dtype as native does: their matmuls take and give the
case's dtype. Like native's kernels (oneDNN's and cuDNN's bf16/fp16 convolutions accumulate in float32 and
add the bias before rounding once), the ``k*k`` partial sums of direct and the bias of every algorithm are
added in float32 and the sum is rounded once to the case's dtype; every cast is a no-op in float32. Measured
on AlexNet's conv2 layer in bf16: accumulating direct's 25 partial products in bf16 doubled its error against
float32 (0.8% instead of native's 0.37%), and a bias added in bf16 has its gradient summed in bf16 by TF's
``BiasAddGrad`` (72% off over 27x27x2 positions), where native's fused kernel sums it in float32.
"""

from __future__ import annotations

from types import ModuleType

from dlbench.cases.spec import CONV_ALGORITHMS, NATIVE_CONV
from dlbench.frameworks.tensorflow.runtime import Tensor

TF_CONV_ALGORITHMS: tuple[str, ...] = CONV_ALGORITHMS  # all four: native, im2col, fft, direct


def native_padding(k: int, stride: int, padding: int) -> str | list[list[int]]:
    """``tf.nn.conv2d``'s padding for ``padding`` zeros on each side: ``VALID`` for none, ``SAME`` where it is
    exactly that (stride 1, odd k, padding (k - 1) / 2: AlexNet's conv2-5, the form oneDNN and cuDNN handle
    best), and the explicit form otherwise (``SAME`` of a strided layer pads asymmetrically)."""
    if padding == 0:
        return "VALID"
    if stride == 1 and 2 * padding == k - 1:
        return "SAME"
    return [[0, 0], [padding, padding], [padding, padding], [0, 0]]


def conv2d(tf: ModuleType, x: Tensor, kernel: Tensor, bias: Tensor, stride: int, padding: int,
           algorithm: str) -> Tensor:
    """The convolution of NHWC ``x`` with the HWIO ``kernel`` (square, odd or even k), ``stride`` and
    ``padding`` zeros on each side, plus ``bias``, by ``algorithm`` (one of :data:`TF_CONV_ALGORITHMS`); all
    operands in the case's compute dtype, the result too."""
    k = int(kernel.shape[0])
    if algorithm == NATIVE_CONV:
        return tf.nn.bias_add(tf.nn.conv2d(x, kernel, stride, native_padding(k, stride, padding)), bias)
    if algorithm == "im2col":
        y = _im2col(tf, _pad(tf, x, padding), kernel, stride)
    elif algorithm == "fft":
        y = _fft(tf, _pad(tf, x, padding), kernel, stride)
    elif algorithm == "direct":
        y = _direct(tf, _pad(tf, x, padding), kernel, stride)
    else:
        raise ValueError(f"unknown convolution algorithm {algorithm!r}; algorithms: {', '.join(TF_CONV_ALGORITHMS)}")
    # y is float32 (fft, direct) or the case's dtype (im2col); the bias is added in float32, rounded once
    return tf.cast(tf.nn.bias_add(tf.cast(y, tf.float32), tf.cast(bias, tf.float32)), x.dtype)


def _pad(tf: ModuleType, x: Tensor, padding: int) -> Tensor:
    """``x`` with ``padding`` zero rows and columns on each side (unchanged for none)."""
    if padding == 0:
        return x
    return tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])


def _out_size(size: int, k: int, stride: int) -> int:
    return (size - k) // stride + 1


def _im2col(tf: ModuleType, padded: Tensor, kernel: Tensor, stride: int) -> Tensor:
    k, _, cin, cout = (int(d) for d in kernel.shape)
    patches = tf.image.extract_patches(padded, sizes=[1, k, k, 1], strides=[1, stride, stride, 1],
                                       rates=[1, 1, 1, 1], padding="VALID")  # [N, OH, OW, k*k*Cin]
    n, oh, ow, depth = (int(d) for d in patches.shape)
    columns = tf.reshape(patches, [n * oh * ow, depth])
    return tf.reshape(tf.matmul(columns, tf.reshape(kernel, [k * k * cin, cout])), [n, oh, ow, cout])


def _fft(tf: ModuleType, padded: Tensor, kernel: Tensor, stride: int) -> Tensor:
    k = int(kernel.shape[0])
    _, hp, wp, _ = (int(d) for d in padded.shape)
    signal = tf.transpose(tf.cast(padded, tf.float32), [0, 3, 1, 2])  # [N, Cin, Hp, Wp]
    filters = tf.transpose(tf.cast(kernel, tf.float32), [2, 3, 0, 1])  # [Cin, Cout, k, k]
    filters = tf.pad(filters, [[0, 0], [0, 0], [0, hp - k], [0, wp - k]])  # zero-padded to the input's size
    # X . conj(W) summed over c, computed as conj(conj(X) . W): the same numbers, with the conjugates on the
    # small input and output spectra instead of the Cin x Cout kernel spectra
    spectrum = tf.math.conj(tf.einsum("nchw,cohw->nohw", tf.math.conj(tf.signal.rfft2d(signal)),
                                      tf.signal.rfft2d(filters)))
    full = tf.signal.irfft2d(spectrum, fft_length=[hp, wp])  # [N, Cout, Hp, Wp], circular cross-correlation
    valid = full[:, :, : hp - k + 1 : stride, : wp - k + 1 : stride]
    return tf.transpose(valid, [0, 2, 3, 1])  # float32: conv2d adds the bias and rounds to the case's dtype


def _direct(tf: ModuleType, padded: Tensor, kernel: Tensor, stride: int) -> Tensor:
    k, _, cin, cout = (int(d) for d in kernel.shape)
    n, hp, wp, _ = (int(d) for d in padded.shape)
    oh, ow = _out_size(hp, k, stride), _out_size(wp, k, stride)
    weights = tf.unstack(tf.reshape(kernel, [k * k, cin, cout]))  # position (a, b) is row a * k + b
    total: Tensor = None
    for a in range(k):
        for b in range(k):
            window = padded[:, a : a + stride * (oh - 1) + 1 : stride, b : b + stride * (ow - 1) + 1 : stride, :]
            term = tf.cast(tf.matmul(tf.reshape(window, [n * oh * ow, cin]), weights[a * k + b]), tf.float32)
            total = term if total is None else total + term
    return tf.reshape(total, [n, oh, ow, cout])  # float32 partial sums: conv2d rounds once
