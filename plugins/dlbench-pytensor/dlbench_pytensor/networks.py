"""The canonical networks as PyTensor graphs, and the (workload, phase) table.

A network maps (params, inputs, dropout stream or None, convolution algorithm) to its symbolic output; a
:class:`Network` pairs it with its objective. The parameters are the canonical names in the canonical layout
(HWIO convolution kernels, ``[in, out]`` dense kernels, LSTM kernels ``[in, 4H]`` with gates i, f, g, o), so
that loading the weights and mapping the gradients back are the identity, as in the JAX adapter. The LSTM is a
``pytensor.scan`` over the time steps (the study's Theano LSTM was a scan too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytensor
import pytensor.tensor as pt
from pytensor.tensor.random.utils import RandomStream

from dlbench.cases.spec import NATIVE_CONV
from dlbench.frameworks.base import CaseUnavailable
from dlbench.workloads import get_workload, pretrain_level
from dlbench.workloads.definitions import LAYER_PREFIX
from dlbench_pytensor.convolution import conv_layer
from dlbench_pytensor.layers import (
    Params,
    Var,
    attention,
    cross_entropy,
    dense,
    dropout,
    gelu,
    layer_norm,
    max_pool_2x2,
    max_pool_window,
    reconstruction_loss,
    relu,
)

Inputs = tuple[Var, ...]
Output = Callable[[Params, Inputs, RandomStream | None, str], Var]
Objective = Callable[[Params, Inputs, Var, RandomStream | None, str], Var]


def _conv(params: Params, workload: str, name: str, x: Var, conv: str) -> Var:
    """Convolution ``name`` of ``workload`` with its canonical geometry, by algorithm ``conv``."""
    layer = get_workload(workload).convolution(name)
    return conv_layer(x, params[f"{name}.kernel"], params[f"{name}.bias"], layer.k, layer.stride, layer.padding,
                      layer.out_h, layer.out_w, conv)


def _pool3(x: Var, size_in: int) -> Var:
    """AlexNet's overlapping 3x3/2 pool of a ``size_in`` x ``size_in`` map."""
    out = (size_in - 3) // 2 + 1
    return max_pool_window(x, 3, 2, out, out)


def lenet(params: Params, inputs: Inputs, stream: RandomStream | None, conv: str = NATIVE_CONV) -> Var:
    (x,) = inputs
    x = max_pool_2x2(pt.tanh(_conv(params, "lenet", "conv1", x, conv)))
    x = max_pool_2x2(pt.tanh(_conv(params, "lenet", "conv2", x, conv)))
    x = x.reshape((x.shape[0], 800))  # NHWC flatten = the canonical H, W, C order
    return dense(params, "fc2", relu(dense(params, "fc1", x)))


def alexnet(params: Params, inputs: Inputs, stream: RandomStream | None, conv: str = NATIVE_CONV) -> Var:
    (x,) = inputs
    x = _pool3(relu(_conv(params, "alexnet", "conv1", x, conv)), 55)
    x = _pool3(relu(_conv(params, "alexnet", "conv2", x, conv)), 27)
    x = relu(_conv(params, "alexnet", "conv3", x, conv))
    x = relu(_conv(params, "alexnet", "conv4", x, conv))
    x = _pool3(relu(_conv(params, "alexnet", "conv5", x, conv)), 13)
    x = x.reshape((x.shape[0], 9216))
    x = dropout(relu(dense(params, "fc6", x)), stream)
    x = dropout(relu(dense(params, "fc7", x)), stream)
    return dense(params, "fc8", x)


def encode(params: Params, x: Var, levels: int) -> Var:
    """The first ``levels`` sigmoid encoders of the stacked autoencoder."""
    for i in range(1, levels + 1):
        x = pt.sigmoid(dense(params, f"enc{i}", x))
    return x


def pretrain_pair(params: Params, x: Var, level: int) -> tuple[Var, Var]:
    """(reconstruction, target) of pretraining phase ``level``: the target is the frozen encoding below it, the
    decoder reuses the transpose of the encoder kernel (tied) with its own bias."""
    target = encode(params, x, level - 1)
    hidden = pt.sigmoid(dense(params, f"enc{level}", target))
    recon = pt.sigmoid(pt.dot(hidden, params[f"enc{level}.kernel"].T) + params[f"dec{level}.bias"])
    return recon, target


def finetune(params: Params, inputs: Inputs, stream: RandomStream | None, conv: str = NATIVE_CONV) -> Var:
    return dense(params, "classifier", encode(params, inputs[0], 3))


def lstm(params: Params, inputs: Inputs, stream: RandomStream | None, conv: str = NATIVE_CONV) -> Var:
    """Embedding, one LSTM layer as ``pytensor.scan`` over time (the input projection of all steps as one
    matmul before the loop), mean of the hidden states over the valid steps, dropout, classifier."""
    tokens, mask = inputs
    embedded = params["embedding.table"][tokens]  # [N, T, D]
    projected = pt.dot(embedded, params["lstm.input_kernel"]) + params["lstm.bias"]  # [N, T, 4H]
    recurrent = params["lstm.recurrent_kernel"]
    hidden = get_workload("lstm").param("lstm.recurrent_kernel").shape[0]

    def step(z_in: Var, h: Var, c: Var, kernel: Var) -> tuple[Var, Var]:
        z = z_in + pt.dot(h, kernel)
        i, f, g, o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
        c = pt.sigmoid(f) * c + pt.sigmoid(i) * pt.tanh(g)
        return pt.sigmoid(o) * pt.tanh(c), c

    zeros = pt.zeros((tokens.shape[0], hidden), dtype="float32")
    states, _ = pytensor.scan(step, sequences=[projected.dimshuffle(1, 0, 2)], outputs_info=[zeros, zeros],
                              non_sequences=[recurrent], strict=True, return_updates=True)
    weights = mask.T[:, :, None]  # [T, N, 1]
    pooled = pt.sum(states[0] * weights, axis=0) / pt.sum(mask, axis=1, keepdims=True)
    return dense(params, "classifier", dropout(pooled, stream))


def transformer(params: Params, inputs: Inputs, stream: RandomStream | None, conv: str = NATIVE_CONV) -> Var:
    """Token + learned position embeddings, pre-LN encoder layers, final layer norm, mean over the valid tokens,
    classifier (workloads.md). The residual stream is ``[N*T, D]`` (every projection one 2-D GEMM) and the
    attention works on ``[N*heads, T, head_dim]`` (batched GEMMs)."""
    extra = get_workload("transformer").extra
    heads, layers = extra["heads"], extra["layers"]
    width = get_workload("transformer").param("final_ln.gamma").shape[0]
    head_dim = width // heads
    tokens, mask = inputs
    n, steps = tokens.shape[0], tokens.shape[1]
    h = (params["embedding.table"][tokens] + params["position.table"][:steps]).reshape((n * steps, width))
    keep = pt.repeat(mask[:, None, :], heads, axis=0)  # [N*heads, 1, T], sample-major as the heads below

    def split(a: Var) -> Var:  # [N*T, D] -> [N*heads, T, head_dim]
        return a.reshape((n, steps, heads, head_dim)).transpose(0, 2, 1, 3).reshape((n * heads, steps, head_dim))

    for i in range(layers):
        prefix = f"layer{i}"
        a = layer_norm(params, f"{prefix}.ln1", h)
        q, k, v = (split(dense(params, f"{prefix}.attn.{part}", a)) for part in ("query", "key", "value"))
        context = attention(q, k, v, keep, head_dim)
        merged = context.reshape((n, heads, steps, head_dim)).transpose(0, 2, 1, 3).reshape((n * steps, width))
        h = h + dense(params, f"{prefix}.attn.output", merged)
        hidden = gelu(dense(params, f"{prefix}.ff1", layer_norm(params, f"{prefix}.ln2", h)))
        h = h + dense(params, f"{prefix}.ff2", hidden)
    final = layer_norm(params, "final_ln", h).reshape((n, steps, width))
    pooled = pt.sum(final * mask[:, :, None], axis=1) / pt.sum(mask, axis=1, keepdims=True)
    return dense(params, "classifier", pooled)


@dataclass(frozen=True)
class Network:
    """One (workload, phase): its forward graph and its loss graph."""

    output: Output
    objective: Objective
    uses_dropout: bool
    input_gradient: bool = False  # the gradient pass also differentiates w.r.t. the input (layer benchmarks)


def _classifier(output: Output) -> Objective:
    def objective(params: Params, inputs: Inputs, labels: Var, stream: RandomStream | None, conv: str) -> Var:
        return cross_entropy(output(params, inputs, stream, conv), labels)

    return objective


def _pretrain(level: int) -> Network:
    def output(params: Params, inputs: Inputs, stream: RandomStream | None, conv: str) -> Var:
        return pretrain_pair(params, inputs[0], level)[0]

    def objective(params: Params, inputs: Inputs, labels: Var, stream: RandomStream | None, conv: str) -> Var:
        return reconstruction_loss(*pretrain_pair(params, inputs[0], level))

    return Network(output, objective, uses_dropout=False)


def _layer(workload: str) -> Network:
    """A layer benchmark: the convolution plus bias, objective ``sum(y**2) / (2N)``, input gradient too."""
    (layer,) = get_workload(workload).convolutions

    def output(params: Params, inputs: Inputs, stream: RandomStream | None, conv: str) -> Var:
        return conv_layer(inputs[0], params[f"{layer.name}.kernel"], params[f"{layer.name}.bias"], layer.k,
                          layer.stride, layer.padding, layer.out_h, layer.out_w, conv)

    def objective(params: Params, inputs: Inputs, labels: Var, stream: RandomStream | None, conv: str) -> Var:
        y = output(params, inputs, stream, conv)
        return pt.sum(pt.sqr(y)) / pt.cast(2 * y.shape[0], "float32")

    return Network(output, objective, uses_dropout=False, input_gradient=True)


NETWORKS: dict[str, tuple[Output, bool]] = {
    "lenet": (lenet, False), "alexnet": (alexnet, True), "lstm": (lstm, True), "transformer": (transformer, False),
}


def network_for(workload: str, phase: str) -> Network:
    """The network of ``workload``/``phase``; CaseUnavailable for a workload this plugin does not know (another
    plugin may add workloads)."""
    if workload.startswith(LAYER_PREFIX):
        return _layer(workload)
    if workload in NETWORKS:
        output, uses_dropout = NETWORKS[workload]
        return Network(output, _classifier(output), uses_dropout)
    if workload == "autoencoder":
        if phase == "finetune":
            return Network(finetune, _classifier(finetune), uses_dropout=False)
        if pretrain_level(phase):
            return _pretrain(pretrain_level(phase))
    where = f" phase {phase!r}" if phase else ""
    raise CaseUnavailable(f"the PyTensor adapter does not implement workload {workload!r}{where}")
