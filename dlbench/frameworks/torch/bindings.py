"""The canonical <-> PyTorch bindings of this adapter: the canonical weights copied into a built network's
parameters (through its binding table, :mod:`dlbench.frameworks.layouts`), the phase's trainable set marked
with ``requires_grad``, and the canonical batch placed on the device in PyTorch's layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from dlbench.frameworks.layouts import Binding
from dlbench.frameworks.torch.networks import _Inputs, _Net
from dlbench.workloads import Batch

if TYPE_CHECKING:
    import torch


def _load_weights(net: _Net, weights: Mapping[str, np.ndarray]) -> None:
    """Copy the canonical weights in (their names and shapes are checked by ``Adapter.check_request``);
    parameters with no canonical counterpart are zeroed and frozen."""
    import torch

    bound = set()
    with torch.no_grad():
        for b in net.bindings:
            value = b.to_framework(np.asarray(weights[b.canonical], dtype=np.float32))
            param = net.layers.get_parameter(b.path)
            if value.size != param.numel():
                raise RuntimeError(
                    f"{b.canonical}: converted shape {value.shape} does not fit {b.path} {tuple(param.shape)}"
                )
            param.view(value.shape).copy_(torch.from_numpy(value))
            bound.add(b.path)
        for path, param in net.layers.named_parameters():
            if path not in bound:
                param.zero_()
                param.requires_grad_(False)


def _mark_trainable(net: _Net, trainable: tuple[str, ...]) -> tuple[Binding, ...]:
    """Set ``requires_grad`` from the phase's canonical trainable names; return their bindings in order."""
    by_name = {b.canonical: b for b in net.bindings}
    missing = [n for n in trainable if n not in by_name]
    if missing:
        raise RuntimeError(f"the PyTorch model has no parameter for {', '.join(missing)}")
    wanted = set(trainable)
    for b in net.bindings:
        net.layers.get_parameter(b.path).requires_grad_(b.canonical in wanted)
    return tuple(by_name[n] for n in trainable)


def _to_inputs(batch: Batch, device: torch.device, memory_format: torch.memory_format) -> _Inputs:
    """Canonical batch -> device tensors. Images NHWC -> NCHW with explicit strides: for 1-channel input
    ``contiguous()`` is a no-op on a permuted view, whose strides would silently select channels_last."""
    import torch

    labels = torch.tensor(np.asarray(batch.y), dtype=torch.int64, device=device)
    x = np.asarray(batch.x)
    if batch.mask is not None:
        tokens = torch.tensor(x, dtype=torch.int64, device=device)
        mask = torch.tensor(batch.mask, dtype=torch.float32, device=device)
        keep = (mask > 0)[:, None, None, :]
        return _Inputs(tokens, labels, mask.unsqueeze(-1), keep)
    tensor = torch.tensor(x, dtype=torch.float32, device=device)
    if tensor.dim() == 4:
        tensor = tensor.permute(0, 3, 1, 2).clone(memory_format=memory_format)
    return _Inputs(tensor, labels)
