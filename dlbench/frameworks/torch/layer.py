"""The layer benchmarks (``conv:lenet.conv1`` ... ``conv:alexnet.conv5``): one convolution of LeNet or AlexNet
alone, as convnet-benchmarks timed them, by any convolution algorithm (:mod:`.convolution`; the adapter routes
the layer's ``nn.Conv2d`` like those of the networks).

The output is the convolution plus its bias, no nonlinearity (NCHW-indexed in the variant's memory format;
``evaluate`` returns it in the canonical NHWC), and the objective is ``sum(y**2) / (2 N)`` in float32. The
gradient pass differentiates it with respect to the kernel, the bias *and the input* (``_Net.layer``): what a
convolution library's backward computes inside a network, and so what the layer benchmark must time.
``evaluate`` reports the kernel and bias gradients (HWIO, canonical names); the input gradient is part of the
timed pass only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlbench.frameworks.layouts import conv_bindings
from dlbench.frameworks.torch.networks import _Inputs, _Net, _Options
from dlbench.workloads import Workload

if TYPE_CHECKING:
    import torch


def _conv_layer(workload: Workload, opts: _Options) -> _Net:
    from torch import nn

    (layer,) = workload.convolutions
    conv = nn.Conv2d(layer.cin, layer.cout, layer.k, stride=layer.stride, padding=layer.padding)

    def forward(inputs: _Inputs, training: bool) -> torch.Tensor:
        return conv(inputs.x)

    def output_and_loss(inputs: _Inputs, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        y = conv(inputs.x)
        return y, y.float().square().sum() / (2 * y.shape[0])

    return _Net(nn.ModuleDict({layer.name: conv}), conv_bindings(layer.name), forward, output_and_loss, layer=True)
