"""The ResNet in TensorFlow: the builder the plugin names for the ``tensorflow`` adapter.

A TensorFlow builder is a subclass of ``dlbench.frameworks.tensorflow.networks._Network``, constructed by the
adapter with ``(tf, request)``: its base class has already created one ``tf.Variable`` per canonical parameter
the phase reads (canonical layout, trainable exactly when the phase trains it; the running statistics are not)
and ``read(name)`` hands one out. ``forward`` is the forward pass (batch norm by the running statistics),
``objective`` the gradient pass's (output, loss) (batch norm by the batch's statistics); the adapter traces
both with ``tf.function`` (or XLA, or runs them eagerly, by variant). Imported only in the TensorFlow worker.
"""

from __future__ import annotations

from dlbench.frameworks.tensorflow.networks import _Network
from dlbench.frameworks.tensorflow.runtime import Feeds, Tensor
from dlbench_resnet.workload import BLOCKS, EPSILON, STEM, Conv


class ResNetTF(_Network):
    def _conv(self, conv: Conv, x: Tensor) -> Tensor:
        pad = [[0, 0], [conv.pad, conv.pad], [conv.pad, conv.pad], [0, 0]]  # explicit: TF's SAME pads asymmetrically
        return self.tf.nn.conv2d(self.low(x), self.read(f"{conv.name}.kernel"), conv.stride, pad if conv.pad else
                                 "VALID")

    def _bn(self, name: str, x: Tensor, training: bool) -> Tensor:
        tf = self.tf
        if training:
            mean, var = tf.nn.moments(x, axes=[0, 1, 2])
        else:
            mean, var = self.read(f"{name}.mean"), self.read(f"{name}.var")
        return tf.nn.batch_normalization(x, mean, var, self.read(f"{name}.beta"), self.read(f"{name}.gamma"),
                                         EPSILON)

    def _conv_bn(self, conv: Conv, x: Tensor, training: bool) -> Tensor:
        return self._bn(conv.bn, self._conv(conv, x), training)

    def _resnet(self, x: Tensor, training: bool) -> Tensor:
        relu = self.tf.nn.relu
        h = relu(self._conv_bn(STEM, x, training))
        for block in BLOCKS:
            y = relu(self._conv_bn(block.conv1, h, training))
            y = self._conv_bn(block.conv2, y, training)
            shortcut = h if block.projection is None else self._conv_bn(block.projection, h, training)
            h = relu(y + shortcut)
        return self.dense(self.tf.reduce_mean(h, axis=[1, 2]), "fc")

    def forward(self, feeds: Feeds, training: bool) -> Tensor:
        return self._resnet(feeds[0], training=False)

    def objective(self, feeds: Feeds, training: bool) -> tuple[Tensor, Tensor]:
        logits = self._resnet(feeds[0], training=True)  # batch statistics, whatever the dropout flag says
        return logits, self.cross_entropy(logits, feeds[-1])
