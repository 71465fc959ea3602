"""The layer benchmarks (``conv:lenet.conv1`` ... ``conv:alexnet.conv5``): one convolution of LeNet or AlexNet
alone, by any of the convolution algorithms (:mod:`dlbench.frameworks.tensorflow.convolution`)."""

from __future__ import annotations

from types import ModuleType

import numpy as np

from dlbench.frameworks.base import BuildRequest
from dlbench.frameworks.tensorflow.convolution import conv2d
from dlbench.frameworks.tensorflow.networks import _Network
from dlbench.frameworks.tensorflow.runtime import Feeds, Tensor
from dlbench.workloads import Batch


class _ConvLayer(_Network):
    """The layer's input (the canonical NHWC batch) through its convolution plus bias, no nonlinearity: the
    output is the convolution's (``activation``), the loss ``sum(y**2) / (2 N)`` in float32, and the gradient
    pass computes the input gradient as well as the kernel and bias gradients. ``native`` is ``tf.nn.conv2d``
    with the layer's padding as ``VALID``, ``SAME`` (where that is exactly it) or explicit."""

    def __init__(self, tf: ModuleType, request: BuildRequest) -> None:
        super().__init__(tf, request)
        (self.layer,) = request.workload.convolutions

    def feed_arrays(self, batch: Batch) -> tuple[np.ndarray, ...]:
        return (batch.x,)  # no labels: the loss is the output's own

    def gradient_inputs(self, feeds: Feeds) -> tuple[Tensor, ...]:
        return (feeds[0],)

    def forward(self, feeds: Feeds, training: bool) -> Tensor:
        layer, name = self.layer, self.layer.name
        return self.traced_conv(conv2d(self.tf, self.low(feeds[0]), self.read(f"{name}.kernel"),
                                       self.read(f"{name}.bias"), layer.stride, layer.padding, self.conv_algorithm))

    def objective(self, feeds: Feeds, training: bool) -> tuple[Tensor, Tensor]:
        tf = self.tf
        y = self.forward(feeds, training)
        loss = tf.reduce_sum(tf.square(tf.cast(y, tf.float32))) / (2.0 * y.shape[0])
        return y, loss
