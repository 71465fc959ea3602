"""The ``conv_backend`` trait of a PyTorch case (``BuiltCase.traits``): what really computed its convolutions,
read from PyTorch during the build's probe call (one forward pass, the dtype probe's), so that a switch or an
algorithm that silently did nothing shows in the results.

* ``native``: the backend that PyTorch's convolution dispatcher selects for each convolution, asked with
  ``torch._C._select_conv_backend`` on the convolution's real input, weight and bias (cast to the autocast
  dtype, as autocast casts them) while the case's flags are in effect: ``Mkldnn`` (oneDNN), ``Slow2d``
  (PyTorch's own im2col kernel, ``slow_conv2d``), ``NnpackSpatial``, ``Cudnn``, ... (the names of
  ``torch._C._ConvBackend``). ``torch.compile`` calls the same ATen convolution (an extern kernel of
  inductor), which selects the same backend at run time.
* ``im2col``, ``direct``, ``fft``: the ATen operations that did the arithmetic inside the convolution's call,
  seen by a ``TorchDispatchMode`` below autocast: ``aten.addmm`` (im2col and direct, ``channels_last``, float32;
  ``aten.mm`` for direct in bf16/fp16), ``aten.baddbmm`` (both in NCHW; ``aten.bmm`` for direct in bf16/fp16),
  ``aten.fft_rfft2+aten.einsum+aten.fft_irfft2`` (fft). An ``aten.convolution`` there would mean that the
  routing failed and native ran.

One label when every convolution of the case agrees, else ``conv1:<label>+conv2:<label>...``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dlbench.cases.spec import NATIVE_CONV

# The ATen ops that do a convolution's multiply-adds, as a dispatch mode sees them in the probe's inference-mode
# call (composite ops such as einsum and the torch.fft functions arrive whole there, not decomposed).
ARITHMETIC_OPS: frozenset[str] = frozenset({
    "convolution", "_convolution", "conv2d", "mm", "addmm", "bmm", "baddbmm", "matmul", "einsum",
    "fft_rfft2", "fft_irfft2", "_fft_r2c", "_fft_c2r", "_fft_c2c",
})


class ConvProbe:
    """What computed each convolution module (by its path in the network), filled in by the probe's call."""

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}
        self.layouts: dict[str, str] = {}  # the memory layout of each convolution's output

    def note_output(self, module: str, output: Any) -> None:
        import torch

        nhwc = output.is_contiguous(memory_format=torch.channels_last) and not output.is_contiguous()
        self.layouts.setdefault(module, "channels_last" if nhwc else "NCHW")

    def note(self, module: str, what: str) -> None:
        seen = self.found.setdefault(module, [])
        if what not in seen:
            seen.append(what)

    def label(self) -> str:
        """One label if every convolution agrees, else one per convolution; ``none`` if none ran."""
        labels = {module: "+".join(seen) for module, seen in self.found.items()}
        if not labels:
            return "none"
        if len(set(labels.values())) == 1:
            return next(iter(labels.values()))
        return "+".join(f"{module}:{label}" for module, label in labels.items())


def native_backend(torch: Any, module: Any, x: Any) -> str:
    """The backend PyTorch's convolution selects for ``module(x)`` with the flags now in effect."""
    kind = x.device.type
    dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype
    bias = None if module.bias is None else module.bias.to(dtype)
    backend = torch._C._select_conv_backend(x.to(dtype), module.weight.to(dtype), bias, list(module.stride),
                                            list(module.padding), list(module.dilation), False, [0, 0],
                                            module.groups)
    return str(backend.name)


@contextmanager
def conv_probe(torch: Any, layers: Any, algorithm: str) -> Iterator[ConvProbe]:
    """Hooks on every ``nn.Conv2d`` of ``layers`` for the duration of the block (the probe's forward call):
    for ``native`` the selected backend of each call, for another algorithm the arithmetic ops it ran, and for
    both the memory layout of each convolution's output."""
    from torch import nn
    from torch.utils._python_dispatch import TorchDispatchMode

    probe = ConvProbe()

    class Recorder(TorchDispatchMode):
        def __init__(self, module: str) -> None:
            super().__init__()
            self.module = module
            self.active = False

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            name = func.overloadpacket.__name__
            if name in ARITHMETIC_OPS:
                probe.note(self.module, f"aten.{name}")
            return func(*args, **(kwargs or {}))

    handles: list[Any] = []
    recorders: list[Any] = []
    for path, module in layers.named_modules():
        if not isinstance(module, nn.Conv2d):
            continue

        def output(mod: Any, args: Any, out: Any, path: str = path) -> None:
            probe.note_output(path, out)

        handles.append(module.register_forward_hook(output))
        if algorithm == NATIVE_CONV:
            def select(mod: Any, args: Any, path: str = path) -> None:
                probe.note(path, native_backend(torch, mod, args[0]))

            handles.append(module.register_forward_pre_hook(select))
        else:
            recorder = Recorder(path)

            def enter(mod: Any, args: Any, recorder: Any = recorder) -> None:
                recorder.__enter__()
                recorder.active = True

            def leave(mod: Any, args: Any, output: Any, recorder: Any = recorder) -> None:
                recorder.active = False
                recorder.__exit__(None, None, None)

            recorders.append(recorder)
            handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        yield probe
    finally:
        for handle in handles:
            handle.remove()
        for recorder in recorders:  # a call that raised inside a convolution must not leave its mode on
            if recorder.active:
                recorder.active = False
                recorder.__exit__(None, None, None)
