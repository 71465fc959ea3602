"""The convolution algorithms in PyTensor, on the canonical NHWC input and HWIO kernel.

PyTensor 3 ships no neural-network convolution: Theano's ``conv2d`` and its C implementations (``CorrMM``,
im2col + GEMM, what Theano ran on CPUs in the 2016 study) were removed with ``pytensor.tensor.nnet``. What is
left is ``pytensor.tensor.signal.convolve2d``, SciPy's ``signal.convolve`` of two 2-D arrays wrapped as an
op and broadcast over leading axes (``Blockwise``), differentiable. So:

* ``native`` is that op, as shipped: every (sample, output channel, input channel) triple is one SciPy call
  on one 2-D map, summed over the input channels afterwards; the kernel is flipped, since ``convolve2d``
  convolves and the networks cross-correlate; a strided layer subsamples the stride-1 result. It computes
  the right numbers and is very slow (a Python-level loop over the triples): it shows what PyTensor offers.
* ``im2col`` is Theano's ``CorrMM`` recipe written in PyTensor's graph language: the patch matrix from
  ``k*k`` strided slices concatenated along the channels, one matrix multiply with the kernel reshaped to
  ``[k*k*Cin, Cout]``.
* ``direct``: the sum over the ``k*k`` kernel positions of the shifted (strided) slice times that
  position's ``[Cin, Cout]`` weights: ``k*k`` matrix multiplies, no patch matrix.

Every gradient is PyTensor's symbolic derivative of this code (``pytensor.grad``), never hand-written. No
``fft`` algorithm: not written (yet); the base class reports it ``unavailable``.
"""

from __future__ import annotations

from typing import Any

import pytensor.tensor as pt
from pytensor.tensor.signal import convolve2d

from dlbench.cases.spec import NATIVE_CONV

Var = Any
ALGORITHMS: tuple[str, ...] = (NATIVE_CONV, "im2col", "direct")
# What computes the convolutions of each algorithm (the ``conv_backend`` trait): native is one SciPy call per
# 2-D map; the others are PyTensor dot products, whose op (Dot22, Gemm, ...) the case reads from the graph.
NATIVE_BACKEND = "scipy.signal.convolve (Blockwise Convolve2d)"


def pad_nhwc(x: Var, padding: int) -> Var:
    """Zeros on each side of H and W of an NHWC map, written into a zero map of the input's dtype (``pt.pad``
    builds its fill value in float64, which would promote the whole network)."""
    if padding == 0:
        return x
    h, w = x.shape[1], x.shape[2]
    padded = pt.zeros((x.shape[0], h + 2 * padding, w + 2 * padding, x.shape[3]), dtype=x.dtype)
    return pt.set_subtensor(padded[:, padding:padding + h, padding:padding + w, :], x)


def _slice(x: Var, i: int, j: int, stride: int, out_h: int, out_w: int) -> Var:
    """The input positions that kernel offset (i, j) meets, one per output position: ``[N, OH, OW, Cin]``."""
    return x[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride, :]


def conv_native(x: Var, kernel: Var, k: int, stride: int, out_h: int, out_w: int) -> Var:
    """``convolve2d`` over (N, Cout, Cin): input ``[N, 1, Cin, H, W]``, flipped kernel ``[1, Cout, Cin, k, k]``,
    valid mode, summed over Cin, subsampled by the stride, back to NHWC."""
    maps = x.dimshuffle(0, "x", 3, 1, 2)
    flipped = kernel.dimshuffle(3, 2, 0, 1)[:, :, ::-1, ::-1].dimshuffle("x", 0, 1, 2, 3)
    full = convolve2d(maps, flipped, mode="valid").sum(axis=2)  # [N, Cout, H-k+1, W-k+1]
    strided = full[:, :, :stride * (out_h - 1) + 1:stride, :stride * (out_w - 1) + 1:stride]
    return strided.dimshuffle(0, 2, 3, 1)


def conv_im2col(x: Var, kernel: Var, k: int, stride: int, out_h: int, out_w: int) -> Var:
    """Patch matrix ``[N*OH*OW, k*k*Cin]`` (columns in kernel-row, kernel-column, channel order: the HWIO
    kernel's own flatten order) times the kernel as ``[k*k*Cin, Cout]``."""
    cin, cout = kernel.shape[2], kernel.shape[3]
    patches = pt.concatenate([_slice(x, i, j, stride, out_h, out_w) for i in range(k) for j in range(k)], axis=3)
    n = x.shape[0]
    product = pt.dot(patches.reshape((n * out_h * out_w, k * k * cin)), kernel.reshape((k * k * cin, cout)))
    return product.reshape((n, out_h, out_w, cout))


def conv_direct(x: Var, kernel: Var, k: int, stride: int, out_h: int, out_w: int) -> Var:
    """The sum over kernel positions of ``slice [N*OH*OW, Cin] @ kernel[i, j] [Cin, Cout]``."""
    n, cin, cout = x.shape[0], kernel.shape[2], kernel.shape[3]
    terms = [pt.dot(_slice(x, i, j, stride, out_h, out_w).reshape((n * out_h * out_w, cin)), kernel[i, j])
             for i in range(k) for j in range(k)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total.reshape((n, out_h, out_w, cout))


_CONVS = {NATIVE_CONV: conv_native, "im2col": conv_im2col, "direct": conv_direct}


def conv_layer(x: Var, kernel: Var, bias: Var, k: int, stride: int, padding: int, out_h: int, out_w: int,
               algorithm: str) -> Var:
    """One convolution plus bias by ``algorithm``, NHWC in and out; ``out_h``/``out_w`` are the static output
    sizes (from the canonical layer table), which keeps every slice's extent a constant."""
    if algorithm not in _CONVS:
        raise ValueError(f"no PyTensor convolution algorithm {algorithm!r}; algorithms: {', '.join(ALGORITHMS)}")
    return _CONVS[algorithm](pad_nhwc(x, padding), kernel, k, stride, out_h, out_w) + bias
