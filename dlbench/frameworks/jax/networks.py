"""The canonical networks in plain JAX, their builders, and :func:`network_for`, which finds a workload's.

Each network maps (params, inputs, dropout key or None, pool) to its output, built from the blocks of
:mod:`dlbench.frameworks.jax.layers`; a :class:`Network` pairs it with its objective. A new network is a
builder function (such as :func:`lenet_network`) named by its workload plugin (:mod:`dlbench.workloads.builtin`);
:func:`network_for` finds it. LeNet and AlexNet compute every convolution by the case's algorithm
(:func:`dlbench.frameworks.jax.convolution.conv_layer`; ``native`` is XLA's convolution, the code path they
always had); the layer benchmarks (``conv:alexnet.conv2``) are built in :mod:`.layer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from dlbench.cases.precision import FLOAT32_PARAMS
from dlbench.cases.spec import NATIVE_CONV
from dlbench.frameworks.base import plugin_builder
from dlbench.frameworks.jax.convolution import conv_layer
from dlbench.frameworks.jax.layers import (
    Array,
    Inputs,
    Params,
    PoolFn,
    cross_entropy,
    dense,
    dropout,
    fused_attention,
    gelu,
    layer_norm,
    matmul,
    max_pool_reshape_2x2,
    max_pool_window,
    max_pool_window_2x2,
    plain_attention,
    reconstruction_loss,
)
from dlbench.frameworks.jax.switches import SWITCH_VARIANTS
from dlbench.workloads import Workload, get_workload, pretrain_level

TRANSFORMER = get_workload("transformer")
# Variants that only change the transformer's attention (other workloads: unavailable).
ATTENTION_VARIANTS: tuple[str, ...] = ("plain_attention",)


def lenet(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn, conv: str = NATIVE_CONV) -> Array:
    """``conv``: the convolution algorithm of both convolutions."""
    import jax
    import jax.numpy as jnp

    (x,) = inputs
    x = pool(jnp.tanh(conv_layer(params, "conv1", x, algorithm=conv)))
    x = pool(jnp.tanh(conv_layer(params, "conv2", x, algorithm=conv)))
    x = x.reshape(x.shape[0], -1)  # NHWC flatten = the canonical H, W, C order
    x = jax.nn.relu(dense(params, "fc1", x))
    return dense(params, "fc2", x)


def alexnet(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn, conv: str = NATIVE_CONV) -> Array:
    """``pool`` is unused: AlexNet's 3x3/2 pools overlap, so every variant uses reduce_window. ``conv``: the
    convolution algorithm of all five convolutions."""
    import jax

    (x,) = inputs
    relu = jax.nn.relu
    x = max_pool_window(relu(conv_layer(params, "conv1", x, stride=4, algorithm=conv)), 3, 2)
    x = max_pool_window(relu(conv_layer(params, "conv2", x, padding=2, algorithm=conv)), 3, 2)
    x = relu(conv_layer(params, "conv3", x, padding=1, algorithm=conv))
    x = relu(conv_layer(params, "conv4", x, padding=1, algorithm=conv))
    x = max_pool_window(relu(conv_layer(params, "conv5", x, padding=1, algorithm=conv)), 3, 2)
    x = x.reshape(x.shape[0], -1)
    key6, key7 = (None, None) if key is None else tuple(jax.random.split(key))
    x = dropout(relu(dense(params, "fc6", x)), key6)
    x = dropout(relu(dense(params, "fc7", x)), key7)
    return dense(params, "fc8", x)


def encode(params: Params, x: Array, levels: int) -> Array:
    """The first ``levels`` sigmoid encoders of the stacked autoencoder."""
    import jax

    for i in range(1, levels + 1):
        x = jax.nn.sigmoid(dense(params, f"enc{i}", x))
    return x


def pretrain_pair(params: Params, x: Array, level: int) -> tuple[Array, Array]:
    """(reconstruction, target) of pretraining phase ``level``: the target is the frozen encoding below
    it, the decoder reuses the transpose of the encoder kernel (tied) with its own bias."""
    import jax

    target = encode(params, x, level - 1)
    hidden = jax.nn.sigmoid(dense(params, f"enc{level}", target))
    recon = jax.nn.sigmoid(matmul(hidden, params[f"enc{level}.kernel"].T) + params[f"dec{level}.bias"])
    return recon, target


def finetune(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
    (x,) = inputs
    return dense(params, "classifier", encode(params, x, 3))


def lstm(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
    """Embedding, one LSTM layer as ``lax.scan`` over time (input projection of all steps done as one
    matmul before the scan), mean of the hidden states over the valid steps, dropout, classifier."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    tokens, mask = inputs
    # Indexing, not jnp.take: take's default "fill" mode adds a bounds check and a select over the whole
    # [N, T, D] result (NaN rows for ids out of range) that the canonical look-up does not have.
    embedded = params["embedding.table"][tokens]  # [N, T, D]
    projected = matmul(embedded, params["lstm.input_kernel"]) + params["lstm.bias"]  # [N, T, 4H]
    recurrent = params["lstm.recurrent_kernel"]
    hidden = recurrent.shape[0]

    def step(carry: tuple[Array, Array], z_in: Array) -> tuple[tuple[Array, Array], Array]:
        h, c = carry
        z = z_in + matmul(h, recurrent)
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((tokens.shape[0], hidden), projected.dtype)
    _, states = lax.scan(step, (zeros, zeros), jnp.swapaxes(projected, 0, 1))  # [T, N, H]
    weights = jnp.swapaxes(mask, 0, 1)[:, :, None]  # float32: the pooled sum over time is float32
    pooled = jnp.sum(states * weights, axis=0) / jnp.sum(mask, axis=1, keepdims=True)
    return dense(params, "classifier", dropout(pooled, key))


def transformer(params: Params, inputs: Inputs, fused: bool) -> Array:
    """Token + learned position embeddings, pre-LN encoder layers, final layer norm, mean over the valid
    tokens, classifier (workloads.md). The attention function is looked up in this module when JAX traces,
    so that tests can substitute deliberately wrong ones. The residual stream is kept as ``[N*T, D]`` (the
    layout of the plain implementations and of the TF adapter): with ``[N, T, D]`` XLA's CPU backward of the
    projections did measurably more work than plain JAX (``benchmarks/transformer_plain.py``).

    Mixed precision: the embedding tables and the layer norms' gamma and beta stay float32
    (:data:`dlbench.cases.precision.FLOAT32_PARAMS`), so the residual stream (float32 + a compute-dtype projection
    promotes to float32), the layer norms and the pooling are float32, while :func:`dense` casts each
    projection's input to its compute-dtype kernel. That is the recipe PyTorch's autocast gives the same
    network, so the three frameworks compute the same mixed function."""
    import jax.numpy as jnp

    extra = TRANSFORMER.extra
    heads, layers = extra["heads"], extra["layers"]
    tokens, mask = inputs
    n, steps = tokens.shape
    embedded = params["embedding.table"][tokens] + params["position.table"][:steps]  # indexing: see lstm()
    h = embedded.reshape(n * steps, -1)  # the residual stream as [N*T, D]: every projection one 2-D GEMM
    keep = (mask > 0)[:, None, None, :]
    for i in range(layers):
        prefix = f"layer{i}"
        a = layer_norm(params, f"{prefix}.ln1", h)
        q, k, v = (dense(params, f"{prefix}.attn.{part}", a).reshape(n, steps, heads, -1)
                   for part in ("query", "key", "value"))
        context = (fused_attention if fused else plain_attention)(q, k, v, keep)
        h = h + dense(params, f"{prefix}.attn.output", context.reshape(n * steps, -1))
        hidden = gelu(dense(params, f"{prefix}.ff1", layer_norm(params, f"{prefix}.ln2", h)))
        h = h + dense(params, f"{prefix}.ff2", hidden)
    final = layer_norm(params, "final_ln", h).reshape(n, steps, -1)
    pooled = jnp.sum(final * mask[:, :, None], axis=1) / jnp.sum(mask, axis=1, keepdims=True)
    return dense(params, "classifier", pooled)


@dataclass(frozen=True)
class Network:
    """One (workload, phase): its forward function and its loss (the parameters it reads are the
    phase's ``reads`` in the workload definition). Under mixed precision every parameter is cast to the
    compute dtype except those whose names end with one of ``float32_params``."""

    output: Callable[[Params, Inputs, Array | None, PoolFn], Array]
    objective: Callable[[Params, Inputs, Array, Array | None, PoolFn], Array]
    uses_dropout: bool
    float32_params: tuple[str, ...] = ()
    input_gradient: bool = False  # the gradient pass also differentiates w.r.t. the input (layer benchmarks)


def _classifier_objective(
    output: Callable[[Params, Inputs, Array | None, PoolFn], Array],
) -> Callable[[Params, Inputs, Array, Array | None, PoolFn], Array]:
    def objective(params: Params, inputs: Inputs, labels: Array, key: Array | None, pool: PoolFn) -> Array:
        return cross_entropy(output(params, inputs, key, pool), labels)

    return objective


def _pretrain_network(level: int) -> Network:
    def output(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
        return pretrain_pair(params, inputs[0], level)[0]

    def objective(params: Params, inputs: Inputs, labels: Array, key: Array | None, pool: PoolFn) -> Array:
        return reconstruction_loss(*pretrain_pair(params, inputs[0], level))

    return Network(output, objective, uses_dropout=False)


def _transformer_network(fused: bool) -> Network:
    def output(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
        return transformer(params, inputs, fused)

    return Network(output, _classifier_objective(output), uses_dropout=False,
                   float32_params=FLOAT32_PARAMS["transformer"])


def _convnet(network: Callable[[Params, Inputs, Array | None, PoolFn, str], Array],
             conv: str) -> Callable[[Params, Inputs, Array | None, PoolFn], Array]:
    """LeNet or AlexNet with every convolution computed by algorithm ``conv``."""
    def output(params: Params, inputs: Inputs, key: Array | None, pool: PoolFn) -> Array:
        return network(params, inputs, key, pool, conv)

    return output


def lenet_network(workload: Workload, phase: str, variant: str, conv: str) -> Network:
    fn = _convnet(lenet, conv)
    return Network(fn, _classifier_objective(fn), uses_dropout=False)


def alexnet_network(workload: Workload, phase: str, variant: str, conv: str) -> Network:
    fn = _convnet(alexnet, conv)
    return Network(fn, _classifier_objective(fn), uses_dropout=True)


def autoencoder_network(workload: Workload, phase: str, variant: str, conv: str) -> Network:
    if phase == "finetune":
        return Network(finetune, _classifier_objective(finetune), uses_dropout=False)
    return _pretrain_network(pretrain_level(phase))


def lstm_network(workload: Workload, phase: str, variant: str, conv: str) -> Network:
    return Network(lstm, _classifier_objective(lstm), uses_dropout=True)


def transformer_network(workload: Workload, phase: str, variant: str, conv: str) -> Network:
    return _transformer_network(fused=variant not in ATTENTION_VARIANTS)


# What a workload plugin's JAX builder is (docs/plugins.md): (definition, phase, variant, convolution
# algorithm) -> the Network of that phase. The built-in five are the functions above.
JaxBuilder = Callable[[Workload, str, str, str], Network]


def network_for(workload: Workload, phase: str, variant: str, conv: str = NATIVE_CONV) -> Network:
    """The network of ``workload``/``phase`` in ``variant`` with its convolutions by algorithm ``conv``: a
    layer benchmark's from :mod:`.layer`, any other from the JAX builder its workload plugin names (the
    built-ins' included); CaseUnavailable for a workload whose plugin has no JAX builder."""
    if workload.is_layer:
        from dlbench.frameworks.jax.layer import layer_network

        return layer_network(workload, conv)
    network = cast(JaxBuilder, plugin_builder(workload, "jax", "JAX"))(workload, phase, variant, conv)
    if not isinstance(network, Network):
        raise TypeError(f"the JAX builder of {workload.name!r} returned {type(network).__name__}, not a Network")
    return network


POOLS: dict[str, PoolFn] = {"jit": max_pool_reshape_2x2, "jit_reduce_window": max_pool_window_2x2,
                            "plain_attention": max_pool_reshape_2x2,
                            **{v: max_pool_reshape_2x2 for v in SWITCH_VARIANTS}}  # the switches are jit's code
