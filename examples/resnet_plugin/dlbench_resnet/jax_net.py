"""The ResNet in JAX: the builder the plugin names for the ``jax`` adapter.

A JAX builder is ``(definition, phase, variant, convolution algorithm) -> dlbench.frameworks.jax.networks.Network``:
a pure ``output(params, inputs, key, pool)`` (the forward pass: batch norm by the running statistics) and
``objective(params, inputs, labels, key, pool)`` (the gradient pass's loss: batch norm by the batch's
statistics). The adapter compiles both ahead of time and differentiates the objective with respect to the
phase's trained parameters; the running statistics arrive with them in ``params`` as frozen parameters.
Imported only in the JAX worker, so it may import JAX at module level.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from dlbench.frameworks.jax.layers import Array, Inputs, Params, PoolFn, cross_entropy, dense
from dlbench.frameworks.jax.networks import Network
from dlbench.workloads import Workload
from dlbench_resnet.workload import BLOCKS, EPSILON, STEM, Conv


def _conv(params: Params, conv: Conv, x: Array) -> Array:
    return lax.conv_general_dilated(x, params[f"{conv.name}.kernel"], (conv.stride, conv.stride),
                                    [(conv.pad, conv.pad)] * 2, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _bn(params: Params, name: str, x: Array, training: bool) -> Array:
    if training:
        mean = jnp.mean(x, axis=(0, 1, 2))
        var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
    else:
        mean, var = params[f"{name}.mean"], params[f"{name}.var"]
    return (x - mean) * lax.rsqrt(var + EPSILON) * params[f"{name}.gamma"] + params[f"{name}.beta"]


def _conv_bn(params: Params, conv: Conv, x: Array, training: bool) -> Array:
    return _bn(params, conv.bn, _conv(params, conv, x), training)


def resnet(params: Params, x: Array, training: bool) -> Array:
    h = jax.nn.relu(_conv_bn(params, STEM, x, training))
    for block in BLOCKS:
        y = jax.nn.relu(_conv_bn(params, block.conv1, h, training))
        y = _conv_bn(params, block.conv2, y, training)
        shortcut = h if block.projection is None else _conv_bn(params, block.projection, h, training)
        h = jax.nn.relu(y + shortcut)
    return dense(params, "fc", jnp.mean(h, axis=(1, 2)))


def _output(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
    return resnet(params, inputs[0], training=False)


def _objective(params: Params, inputs: Inputs, labels: Array, key: Array | None, pool: PoolFn) -> Array:
    return cross_entropy(resnet(params, inputs[0], training=True), labels)


def build(workload: Workload, phase: str, variant: str, conv: str) -> Network:
    """The same network in every JAX variant (it has no pool and no attention for the variants to change)."""
    return Network(_output, _objective, uses_dropout=False)
