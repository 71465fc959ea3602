"""The 2-D convolution of the conv nets computed four ways, each written with PyTorch's own tensor ops
(``docs/convolution.md``); the gradient of every algorithm is autograd's derivative of this code, never a
hand-written backward.

Tensors are in PyTorch's terms: the input NCHW-indexed, the kernel ``nn.Conv2d``'s ``[Cout, Cin, k, k]``
(OIHW), the bias ``[Cout]``. Every algorithm computes the cross-correlation of deep learning (the kernel is not
flipped), ``y[n, o, i, j] = b[o] + sum_{c, a, b} x_pad[n, c, s*i + a, s*j + b] * w[o, c, a, b]``, and follows the
memory layout of the variant (``channels_last``: the NHWC storage of the input, its natural patch and window
order, an NHWC-stored result; ``eager``: contiguous NCHW throughout), as ``F.conv2d`` does:

- ``native``: the module's own call, ``F.conv2d`` (oneDNN on a CPU, cuDNN on a GPU): not routed here at all.
- ``im2col``: zero padding, the patch matrix, one matrix multiply with the bias fused in. ``channels_last``:
  ``Tensor.unfold`` of the padded NHWC input copied into ``[N*OH*OW, Cin*k*k]`` (rows in cin, kh, kw order),
  one ``addmm`` with the kernel as ``[Cin*k*k, Cout]``. ``eager``: the same matrix in ``F.unfold``'s layout
  ``[N, Cin*k*k, OH*OW]`` (each sample's block transposed: the NCHW form of im2col, Caffe's and PyTorch's own
  ``slow_conv2d``'s), cut by ``Tensor.unfold`` too, and one batched ``baddbmm`` with the kernel as ``[Cout,
  Cin*k*k]``. The gradient scatters the patch gradients back (col2im) through autograd's derivative of the
  unfold.
- ``direct``: for each of the ``k*k`` kernel positions, the shifted (strided) window of the padded input
  times that position's ``[Cin, Cout]`` weights (``[N*OH*OW, Cin] @ [Cin, Cout]``, or ``[Cout, Cin] @ [N, Cin,
  OH*OW]`` in NCHW), accumulated: ``k*k`` matrix multiplies and no patch matrix, so the forward pass holds one
  window at a time (the gradient pass keeps the windows its kernel gradient needs, as any autodiff does).
- ``fft``: the zero-padded input and the *flipped* kernel zero-padded to the input's size transformed by
  ``torch.fft.rfft2`` (cross-correlation is convolution with the flipped kernel; the conjugate of the
  kernel's spectrum would do the same, but PyTorch materialises a conjugate before a matmul, a copy of a whole
  spectrum); their product summed over the input channels by one ``einsum`` (a complex matmul per frequency);
  ``irfft2``; the valid ``(Hp-k+1) x (Wp-k+1)`` block of the circular result, which starts at ``k-1`` (no
  wrap-around reaches it), cut out and, for a strided layer, every ``stride``-th row and column of that
  stride-1 result kept; the bias added.

Precision. Under ``torch.autocast`` (bf16/fp16) the operands are rounded to the autocast dtype first, exactly
as autocast rounds native's (input, kernel and bias), and autocast itself is off inside: the algorithm does
its own casts. ``im2col`` and ``direct`` compute in the case's dtype as native does: their GEMMs take the
low-precision operands and accumulate in float32 (``im2col``'s bias is inside its GEMM, rounded once with the
sum; ``direct``'s ``k*k`` products, each rounded by its GEMM, and its bias are summed in float32 and rounded
once: rounding every partial sum would double the error). Both gather their patches or windows from the input
held in float32 and round each gathered block (the same products), so that autograd sums the ``k*k``
contributions to the input gradient in float32, as native's backward kernels do; summed in bf16 they doubled
the input gradient's error (1.4e-2 against native's 5e-3 on AlexNet's conv2 to conv5, batch 4). ``torch.fft``
has no bfloat16 FFT on a CPU, so ``fft`` casts its (already rounded) operands to float32 for the transforms
and the product, adds the bias in float32 and rounds the result to the case's dtype once. In float32 every
cast is a no-op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlbench.cases.spec import CONV_ALGORITHMS, NATIVE_CONV

if TYPE_CHECKING:
    import torch
    from torch import nn

TORCH_CONV_ALGORITHMS: tuple[str, ...] = CONV_ALGORITHMS  # all four: native, im2col, fft, direct


def out_size(size: int, k: int, stride: int) -> int:
    """Output length along one axis of the (already padded) input."""
    return (size - k) // stride + 1


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int,
           algorithm: str, channels_last: bool) -> torch.Tensor:
    """The convolution of NCHW-indexed ``x`` with the OIHW ``weight`` (square kernel), ``stride`` and
    ``padding`` zeros on each side, plus ``bias``, by ``algorithm`` (one of :data:`TORCH_CONV_ALGORITHMS`), in
    the ``channels_last`` layout or contiguous NCHW. The result is NCHW-indexed, stored like the input."""
    import torch
    import torch.nn.functional as F

    if algorithm == NATIVE_CONV:
        return F.conv2d(x, weight, bias, stride, padding)
    if algorithm not in TORCH_CONV_ALGORITHMS:
        raise ValueError(f"unknown convolution algorithm {algorithm!r}; "
                         f"algorithms: {', '.join(TORCH_CONV_ALGORITHMS)}")
    kind = x.device.type
    dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype
    if bias is None:
        bias = weight.new_zeros(weight.shape[0])
    with torch.autocast(kind, enabled=False):
        x, weight, bias = x.to(dtype), weight.to(dtype), bias.to(dtype)  # autocast's rounding of native's
        if algorithm == "im2col":
            return (_im2col_nhwc if channels_last else _im2col_nchw)(x, weight, bias, stride, padding)
        if algorithm == "direct":
            y = (_direct_nhwc if channels_last else _direct_nchw)(x, weight, bias, stride, padding)
        else:
            y = _fft(x, weight, bias, stride, padding)
        return y.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def _wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 (float64 stays float64): the dtype of sums and transforms."""
    import torch

    return t.to(torch.promote_types(t.dtype, torch.float32))


def _padded(x: torch.Tensor, padding: int, channels_last: bool) -> torch.Tensor:
    """The source of an algorithm's gathers: the input widened (:func:`_wide`; a no-op in float32), as an NHWC
    view for ``channels_last`` (no copy when it is stored so) or NCHW, zero-padded. Gathering from the wide
    input and rounding each gathered block to the compute dtype gives the same products, and makes autograd
    sum the ``k*k`` contributions to the input gradient in float32, as native's backward kernels do."""
    import torch.nn.functional as F

    xw = _wide(x)
    if channels_last:
        xw = xw.permute(0, 2, 3, 1)
        return F.pad(xw, (0, 0, padding, padding, padding, padding)) if padding else xw
    return F.pad(xw, (padding, padding, padding, padding)) if padding else xw


def _im2col_nhwc(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, padding: int
                 ) -> torch.Tensor:
    import torch

    cout, cin, k, _ = weight.shape
    xp = _padded(x, padding, channels_last=True)
    n = xp.shape[0]
    patches = xp.unfold(1, k, stride).unfold(2, k, stride)  # [N, OH, OW, Cin, kh, kw], a strided view
    oh, ow = patches.shape[1], patches.shape[2]
    # the patch matrix [N*OH*OW, Cin*k*k], rows in cin, kh, kw order: one copy (the cast or the reshape). Not
    # in kh, kw, cin order (the OHWI kernel's own, 10% faster to gather in eager mode): under torch.compile with
    # more than one thread, PyTorch 2.13's inductor writes out of bounds in the backward of that permuted unfold
    # ("double free or corruption"; one thread, eager mode and this order are fine).
    columns = patches.to(x.dtype).reshape(n * oh * ow, cin * k * k)
    kernel = weight.reshape(cout, cin * k * k)  # a copy of a channels_last kernel, small next to the patches
    y = torch.addmm(bias, columns, kernel.t())  # [N*OH*OW, Cout]
    return y.view(n, oh, ow, cout).permute(0, 3, 1, 2)  # NCHW-indexed, stored NHWC


def _im2col_nchw(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, padding: int
                 ) -> torch.Tensor:
    import torch

    cout, cin, k, _ = weight.shape
    xp = _padded(x, padding, channels_last=False)
    n = xp.shape[0]
    patches = xp.unfold(2, k, stride).unfold(3, k, stride)  # [N, Cin, OH, OW, kh, kw], a strided view
    oh, ow = patches.shape[2], patches.shape[3]
    patches = patches.permute(0, 1, 4, 5, 2, 3).to(x.dtype)  # one copy, as above
    columns = patches.reshape(n, cin * k * k, oh * ow)  # F.unfold's layout: rows in cin, kh, kw order
    kernel = weight.reshape(cout, cin * k * k).expand(n, cout, cin * k * k)
    y = torch.baddbmm(bias.view(1, cout, 1), kernel, columns)  # [N, Cout, OH*OW]
    return y.view(n, cout, oh, ow)


def _direct_nhwc(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, padding: int
                 ) -> torch.Tensor:
    cout, cin, k, _ = weight.shape
    xp = _padded(x, padding, channels_last=True)
    n, hp, wp, _ = xp.shape
    oh, ow = out_size(hp, k, stride), out_size(wp, k, stride)
    taps = weight.permute(2, 3, 1, 0)  # [kh, kw, Cin, Cout]: position (a, b)'s weight matrix is taps[a, b]
    total = _wide(bias).expand(n * oh * ow, cout)
    for a in range(k):
        for b in range(k):
            window = xp[:, a : a + stride * (oh - 1) + 1 : stride, b : b + stride * (ow - 1) + 1 : stride, :]
            total = _accumulate(total, window.to(x.dtype).reshape(n * oh * ow, cin), taps[a, b])
    return total.to(x.dtype).view(n, oh, ow, cout).permute(0, 3, 1, 2)


def _direct_nchw(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, padding: int
                 ) -> torch.Tensor:
    cout, cin, k, _ = weight.shape
    xp = _padded(x, padding, channels_last=False)
    n, _, hp, wp = xp.shape
    oh, ow = out_size(hp, k, stride), out_size(wp, k, stride)
    total = _wide(bias).view(1, cout, 1).expand(n, cout, oh * ow)
    for a in range(k):
        for b in range(k):
            window = xp[:, :, a : a + stride * (oh - 1) + 1 : stride, b : b + stride * (ow - 1) + 1 : stride]
            total = _accumulate(total, weight[:, :, a, b].expand(n, cout, cin),
                                window.to(x.dtype).reshape(n, cin, oh * ow))
    return total.to(x.dtype).view(n, cout, oh, ow)


def _accumulate(total: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``total + left @ right`` (2-D or batched), ``total`` wide (:func:`_wide`). In float32 one ``addmm`` or
    ``baddbmm`` (the sum fused into the GEMM); in a low precision the product in that dtype, added in float32."""
    import torch

    fused = torch.addmm if left.dim() == 2 else torch.baddbmm
    if left.dtype == total.dtype:
        return fused(total, left, right)
    return total + torch.matmul(left, right).to(total.dtype)


def _fft(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    k = weight.shape[-1]
    signal = _wide(x)
    if padding:
        signal = F.pad(signal, (padding, padding, padding, padding))
    hp, wp = signal.shape[-2:]
    # Cross-correlation is convolution with the flipped kernel: y[i] = (x conv flip(w))[i + k - 1]. Flipping the
    # small kernel costs nothing, where a conjugate (the other way) would be materialised on a whole spectrum.
    filters = F.pad(torch.flip(_wide(weight), (-2, -1)), (0, wp - k, 0, hp - k))  # zero-padded to the input's
    spectrum = torch.einsum("nchw,ochw->nohw", torch.fft.rfft2(signal), torch.fft.rfft2(filters))  # sum over c
    full = torch.fft.irfft2(spectrum, s=(hp, wp))  # [N, Cout, Hp, Wp], the circular convolution
    # indices k-1 .. Hp-1 hold the valid outputs: the circular wrap-around lands on 0 .. k-2 only
    valid = full[:, :, k - 1 :: stride, k - 1 :: stride]
    return (valid + _wide(bias).view(1, -1, 1, 1)).to(x.dtype)


def route(module: nn.Conv2d, algorithm: str, channels_last: bool) -> None:
    """Make ``module(x)`` compute its convolution by ``algorithm`` (from the module's own weight, bias, stride
    and padding, so that its parameters, their bindings and count are unchanged, and forward hooks still see
    the call); ``native`` leaves the module as it is."""
    if algorithm == NATIVE_CONV:
        return
    stride, padding = module.stride, module.padding
    if (isinstance(padding, str) or len(set(stride)) != 1 or len(set(padding)) != 1 or module.groups != 1
            or set(module.dilation) != {1}):
        raise ValueError(f"{module!r}: the convolution algorithms take square strides and paddings only")

    def forward(x: torch.Tensor) -> torch.Tensor:
        return conv2d(x, module.weight, module.bias, stride[0], padding[0], algorithm, channels_last)

    setattr(module, "forward", forward)  # noqa: B010 - an instance attribute shadows nn.Conv2d.forward


def route_all(layers: nn.Module, algorithm: str, channels_last: bool) -> None:
    """:func:`route` every ``nn.Conv2d`` of a built network."""
    from torch import nn

    for module in layers.modules():
        if isinstance(module, nn.Conv2d):
            route(module, algorithm, channels_last)

