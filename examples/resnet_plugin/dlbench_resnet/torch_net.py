"""The ResNet in PyTorch: the builder the plugin names for the ``torch`` adapter.

A PyTorch builder is ``(definition, options) -> dlbench.frameworks.torch.networks._Net``, called on the meta
device: the adapter then allocates the parameters on the target device, copies the canonical weights in through
the binding table (canonical name, parameter path, layout converters), marks the phase's trained parameters
``requires_grad`` (the running statistics stay frozen), converts the convolution weights to the variant's memory
format (``channels_last`` by default) and times ``forward`` (batch norm by the running statistics, under
``inference_mode``) and ``output_and_loss`` (batch norm by the batch's statistics). Imported only in the PyTorch
worker, so it imports torch at module level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlbench.frameworks.layouts import Binding, dense_bindings, hwio_to_oihw, oihw_to_hwio
from dlbench.frameworks.torch.networks import _Inputs, _Net, _Options
from dlbench.workloads import Workload
from dlbench_resnet.workload import BLOCKS, CLASSES, EPSILON, STEM, WIDTH, Conv, convolutions


class BatchNorm(nn.Module):
    """Batch norm whose running statistics are (frozen) parameters, so that they bind like any canonical weight."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.gamma, self.beta = nn.Parameter(torch.empty(width)), nn.Parameter(torch.empty(width))
        self.mean, self.var = nn.Parameter(torch.empty(width)), nn.Parameter(torch.empty(width))

    def forward(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        if training:  # the batch's statistics; the running ones are neither read nor updated
            return F.batch_norm(x, None, None, self.gamma, self.beta, training=True, eps=EPSILON)
        return F.batch_norm(x, self.mean, self.var, self.gamma, self.beta, training=False, eps=EPSILON)


def _key(name: str) -> str:
    return name.replace(".", "_")  # nn.ModuleDict keys cannot hold dots


def _bindings(conv: Conv) -> tuple[Binding, ...]:
    bn = _key(conv.bn)
    return (Binding(f"{conv.name}.kernel", f"{_key(conv.name)}.weight", hwio_to_oihw, oihw_to_hwio),
            *(Binding(f"{conv.bn}.{p}", f"{bn}.{p}") for p in ("gamma", "beta", "mean", "var")))


def build(workload: Workload, opts: _Options) -> _Net:
    layers = nn.ModuleDict()
    for conv in convolutions():
        layers[_key(conv.name)] = nn.Conv2d(conv.cin, conv.cout, conv.k, conv.stride, conv.pad, bias=False)
        layers[_key(conv.bn)] = BatchNorm(conv.cout)
    layers["fc"] = nn.Linear(WIDTH, CLASSES)

    def conv_bn(conv: Conv, x: torch.Tensor, training: bool) -> torch.Tensor:
        return layers[_key(conv.bn)](layers[_key(conv.name)](x), training)

    def resnet(x: torch.Tensor, training: bool) -> torch.Tensor:
        h = F.relu(conv_bn(STEM, x, training))
        for block in BLOCKS:
            y = F.relu(conv_bn(block.conv1, h, training))
            y = conv_bn(block.conv2, y, training)
            shortcut = h if block.projection is None else conv_bn(block.projection, h, training)
            h = F.relu(y + shortcut)
        return layers["fc"](h.mean(dim=(2, 3)))

    def forward(inputs: _Inputs, training: bool) -> torch.Tensor:
        return resnet(inputs.x, training=False)

    def output_and_loss(inputs: _Inputs, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        logits = resnet(inputs.x, training=True)  # batch statistics, whatever the dropout flag says
        return logits, F.cross_entropy(logits.float(), inputs.labels)

    bindings = (*(b for conv in convolutions() for b in _bindings(conv)), *dense_bindings("fc"))
    return _Net(layers, bindings, forward, output_and_loss)
