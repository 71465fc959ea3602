"""The layer benchmarks (``conv:lenet.conv1`` ... ``conv:alexnet.conv5``): one convolution of LeNet or AlexNet
alone, as convnet-benchmarks timed them, by any convolution algorithm.

The network's output is the convolution's output plus its bias, no nonlinearity (canonical NHWC; under
bf16/fp16 the convolution computes in the compute dtype as in the networks), and its objective is
``sum(y**2) / (2 N)`` in float32. The gradient pass differentiates that objective with respect to the kernel,
the bias *and the input* (:attr:`~.networks.Network.input_gradient`): what a convolution library's backward
computes inside a network, and what the layer benchmark must therefore time. ``evaluate`` reports the
kernel and bias gradients (HWIO, canonical names); the input gradient is part of the timed pass only.
"""

from __future__ import annotations

from dlbench.frameworks.jax.convolution import conv_layer
from dlbench.frameworks.jax.layers import Array, Inputs, Params, PoolFn
from dlbench.frameworks.jax.networks import Network
from dlbench.workloads import Workload


def layer_network(workload: Workload, conv: str) -> Network:
    """The network of layer workload ``workload`` with its convolution computed by algorithm ``conv``."""
    (layer,) = workload.convolutions

    def output(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
        return conv_layer(params, layer.name, inputs[0], layer.stride, layer.padding, conv)

    def objective(params: Params, inputs: Inputs, labels: Array, key: Array | None, pool: PoolFn) -> Array:
        import jax.numpy as jnp

        y = output(params, inputs, key, pool).astype(jnp.float32)
        return jnp.sum(y * y) / (2.0 * y.shape[0])

    return Network(output, objective, uses_dropout=False, input_gradient=True)
