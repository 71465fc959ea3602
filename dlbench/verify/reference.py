"""A framework-independent NumPy reference of every canonical workload phase.

Why it exists: three frameworks that agree with each other could still all differ from the definition in
``docs/workloads.md`` (a shared misreading, a common default such as two LSTM biases). This module computes the
definition directly, in float64 and with manual backpropagation, so that ``dlbench verify`` checks a single
installed framework too, and so that agreement means agreement with the definition.

Everything is in the canonical layout (NHWC activations, HWIO kernels, ``[in, out]`` dense kernels, LSTM
gates i, f, g, o) and uses the canonical names. The multiply-accumulates are counted from the shapes that are
actually computed, independently of ``dlbench.workloads.definitions``, so that the declared MACs are checked
rather than repeated. Nothing here is optimised beyond im2col: batches in ``verify`` are tiny.

The same code also runs in float32, and ReLU / max-pool decisions near a tie are analysed, so that each
comparison knows how far a *correct* float32 result may legitimately land from the float64 one for this very
input (``Reference.allowance``; see :mod:`dlbench.verify.tolerances` for why both are needed).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from dlbench.cases.precision import round_to_precision
from dlbench.errors import DlbenchError
from dlbench.frameworks.base import Evaluation
from dlbench.verify.layers import (
    ALEXNET,
    LENET,
    Array,
    Conv2D,
    Dense,
    Grads,
    Layer,
    MacCounter,
    Params,
    attention,
    attention_backward,
    gelu,
    gelu_backward,
    key_padding_bias,
    layer_norm,
    layer_norm_backward,
    reconstruction_loss,
    sigmoid,
    softmax_cross_entropy,
)
from dlbench.verify.ties import TieAllowance, tie_allowance
from dlbench.workloads import Batch, get_plugin, get_workload, pretrain_level

NOISE_FACTOR = 10.0  # other float32 implementations may round a few times worse than NumPy's float32 path


@dataclass(frozen=True)
class Reference:
    """The reference evaluation of one workload phase, the MACs per sample it actually performed, the
    near-ties of the ReLU / max-pool networks (see :mod:`dlbench.verify.ties`) and the float32 allowance
    per tensor (empty unless calibrated)."""

    evaluation: Evaluation
    macs_per_sample: int
    ties: TieAllowance | None = None
    allowance: dict[str, Array] = field(default_factory=dict)  # "output", "loss", names; broadcastable


Outcome = tuple[Array, float, Grads, TieAllowance | None]


# The precision whose storage the sequential networks round each layer's output to (float32: no rounding).
# Set only for the duration of one reference_evaluate call; see its ``precision`` argument.
_activation_precision = "float32"


def _stored(h: Array) -> Array:
    """``h`` as a low-precision framework stores it between layers (unchanged for float32)."""
    if _activation_precision == "float32":
        return h
    return np.asarray(round_to_precision(h, _activation_precision), dtype=h.dtype)


def _sequential_classifier(
    layers: Sequence[Layer], params: Params, batch: Batch, macs: MacCounter, gradients: bool, ties: bool
) -> Outcome:
    inputs, caches = [], []
    h = batch.x
    for layer in layers:
        inputs.append(h)
        h, cache = layer.forward(h, params, macs)
        h = _stored(h)
        caches.append(cache)
    loss, dh = softmax_cross_entropy(h, batch.y)
    grads: Grads = {}
    if not gradients:
        return h, loss, grads, None
    upstream: list[Array] = [dh] * len(layers)  # loss gradient w.r.t. each layer's output
    grad: Array | None = dh
    for index in range(len(layers) - 1, -1, -1):
        assert grad is not None
        upstream[index] = grad
        grad = layers[index].backward(grad, caches[index], params, grads, need_dx=index > 0)
    allowance = tie_allowance(layers, params, batch.x, caches, inputs, upstream) if ties else None
    return h, loss, grads, allowance


def _lenet(
    params: Params, phase: str, batch: Batch, macs: MacCounter, gradients: bool, ties: bool
) -> Outcome:
    return _sequential_classifier(LENET, params, batch, macs, gradients, ties)


def _alexnet(
    params: Params, phase: str, batch: Batch, macs: MacCounter, gradients: bool, ties: bool
) -> Outcome:
    return _sequential_classifier(ALEXNET, params, batch, macs, gradients, ties)


# ----------------------------------------------------------------------------------------------------------
# Stacked autoencoder with tied decoders


def _encode(params: Params, x: Array, levels: int, macs: MacCounter) -> list[Array]:
    """Activations of the first ``levels`` encoders: ``[x, h1, ..., h_levels]``."""
    acts = [x]
    for level in range(1, levels + 1):
        kernel = params[f"enc{level}.kernel"]
        macs.add(kernel.size)
        acts.append(sigmoid(acts[-1] @ kernel + params[f"enc{level}.bias"]))
    return acts


def _pretrain(params: Params, level: int, batch: Batch, macs: MacCounter, gradients: bool) -> Outcome:
    """One pretraining phase: the frozen encoders below ``level`` produce the target, which the encoder of
    ``level`` and its tied decoder (the transposed kernel, its own bias) reconstruct."""
    target = _encode(params, batch.x, level - 1, macs)[-1]
    kernel, enc_bias, dec_bias = (
        params[f"enc{level}.kernel"],
        params[f"enc{level}.bias"],
        params[f"dec{level}.bias"],
    )
    code = sigmoid(target @ kernel + enc_bias)
    reconstruction = sigmoid(code @ kernel.T + dec_bias)
    macs.add(2 * kernel.size)
    loss, drec = reconstruction_loss(reconstruction, target)
    grads: Grads = {}
    if gradients:
        dpre_dec = drec * reconstruction * (1.0 - reconstruction)
        dcode = dpre_dec @ kernel
        dpre_enc = dcode * code * (1.0 - code)
        # The tied kernel receives the gradient of both uses: the encoder's and (transposed) the decoder's.
        grads[f"enc{level}.kernel"] = target.T @ dpre_enc + dpre_dec.T @ code
        grads[f"enc{level}.bias"] = dpre_enc.sum(axis=0)
        grads[f"dec{level}.bias"] = dpre_dec.sum(axis=0)
    return reconstruction, loss, grads, None


def _finetune(params: Params, batch: Batch, macs: MacCounter, gradients: bool) -> Outcome:
    acts = _encode(params, batch.x, 3, macs)
    classifier = Dense("classifier")
    logits, cache = classifier.forward(acts[-1], params, macs)
    loss, dlogits = softmax_cross_entropy(logits, batch.y)
    grads: Grads = {}
    if gradients:
        dh = classifier.backward(dlogits, cache, params, grads, need_dx=True)
        for level in range(3, 0, -1):
            assert dh is not None
            h = acts[level]
            dpre = dh * h * (1.0 - h)
            grads[f"enc{level}.kernel"] = acts[level - 1].T @ dpre
            grads[f"enc{level}.bias"] = dpre.sum(axis=0)
            dh = dpre @ params[f"enc{level}.kernel"].T
    return logits, loss, grads, None


def _autoencoder(
    params: Params, phase: str, batch: Batch, macs: MacCounter, gradients: bool, ties: bool
) -> Outcome:
    """Smooth (sigmoid) everywhere: no near-tie analysis is needed."""
    if phase == "finetune":
        return _finetune(params, batch, macs, gradients)
    return _pretrain(params, pretrain_level(phase), batch, macs, gradients)


# ----------------------------------------------------------------------------------------------------------
# LSTM classifier


def _mean_pooled_classifier(
    pooled_sum: Array, mask: Array, params: Params, batch: Batch, macs: MacCounter, gradients: bool
) -> tuple[Array, float, Grads, Array | None]:
    """The sequence models' head: the mean of the states over the valid steps (``pooled_sum`` / their count),
    the classifier and the cross-entropy. Returns the logits, the loss, the classifier's gradients and the
    gradient with respect to every valid state (the same for each; None without ``gradients``)."""
    counts = mask.sum(axis=1, keepdims=True)
    classifier = Dense("classifier")
    logits, cache = classifier.forward(pooled_sum / counts, params, macs)
    loss, dlogits = softmax_cross_entropy(logits, batch.y)
    grads: Grads = {}
    if not gradients:
        return logits, loss, grads, None
    dpooled = classifier.backward(dlogits, cache, params, grads, need_dx=True)
    assert dpooled is not None
    return logits, loss, grads, dpooled / counts


def _lstm(params: Params, phase: str, batch: Batch, macs: MacCounter, gradients: bool, ties: bool) -> Outcome:
    """Embedding, one LSTM layer over all steps (gates i, f, g, o, one bias), mean of the hidden states over
    the valid steps, dense classifier. Backpropagation through time by hand. Smooth: no near-ties."""
    if batch.mask is None:
        raise ValueError("the lstm workload needs a batch with sequence lengths")
    table, w_in, w_rec, bias = (
        params["embedding.table"],
        params["lstm.input_kernel"],
        params["lstm.recurrent_kernel"],
        params["lstm.bias"],
    )
    tokens = batch.x
    dtype = w_rec.dtype
    mask = batch.mask.astype(dtype)
    n, steps = tokens.shape
    hidden = w_rec.shape[0]
    inputs = table[tokens]  # N, T, D
    z_in = inputs @ w_in  # N, T, 4H
    macs.add(steps * (w_in.size + w_rec.size))
    h = np.zeros((n, hidden), dtype=dtype)
    c = np.zeros((n, hidden), dtype=dtype)
    tape = []
    pooled = np.zeros((n, hidden), dtype=dtype)
    for t in range(steps):
        z = z_in[:, t] + h @ w_rec + bias
        i, f = sigmoid(z[:, :hidden]), sigmoid(z[:, hidden : 2 * hidden])
        g, o = np.tanh(z[:, 2 * hidden : 3 * hidden]), sigmoid(z[:, 3 * hidden :])
        c_prev, h_prev = c, h
        c = _stored(f * c_prev + i * g)  # the recurrent state as a low-precision framework stores it
        tanh_c = np.tanh(c)
        h = _stored(o * tanh_c)
        tape.append((i, f, g, o, c_prev, h_prev, tanh_c))
        pooled += mask[:, t, None] * h
    logits, loss, grads, dpooled = _mean_pooled_classifier(pooled, mask, params, batch, macs, gradients)
    if dpooled is None:
        return logits, loss, grads, None
    dz_all = np.zeros_like(z_in)
    grad_rec = np.zeros_like(w_rec)
    dh_next = np.zeros((n, hidden), dtype=dtype)
    dc_next = np.zeros((n, hidden), dtype=dtype)
    for t in range(steps - 1, -1, -1):
        i, f, g, o, c_prev, h_prev, tanh_c = tape[t]
        dh = dh_next + mask[:, t, None] * dpooled
        do = dh * tanh_c
        dc = dc_next + dh * o * (1.0 - tanh_c * tanh_c)
        dz = np.concatenate(
            [dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - g * g), do * o * (1.0 - o)],
            axis=1,
        )
        dz_all[:, t] = dz
        grad_rec += h_prev.T @ dz
        dc_next = dc * f
        dh_next = dz @ w_rec.T
    flat_dz = dz_all.reshape(-1, 4 * hidden)
    grads["lstm.input_kernel"] = inputs.reshape(-1, inputs.shape[-1]).T @ flat_dz
    grads["lstm.recurrent_kernel"] = grad_rec
    grads["lstm.bias"] = flat_dz.sum(axis=0)
    grad_table = np.zeros_like(table)
    np.add.at(grad_table, tokens.ravel(), flat_dz @ w_in.T)
    grads["embedding.table"] = grad_table
    return logits, loss, grads, None


# ----------------------------------------------------------------------------------------------------------
# Transformer encoder classifier


def _dense_apply(x: Array, params: Params, name: str, macs: MacCounter) -> Array:
    """``x @ kernel + bias`` on ``[N, T, in]``; counts the MACs of one sample (T rows). As one 2-D product:
    NumPy's stacked 3-D @ 2-D matmul does not reach BLAS and is 10x slower."""
    kernel = params[f"{name}.kernel"]
    macs.add(x.shape[1] * kernel.size)
    flat = x.reshape(-1, kernel.shape[0]) @ kernel + params[f"{name}.bias"]
    return flat.reshape(*x.shape[:-1], kernel.shape[1])


def _dense_grads(x: Array, dy: Array, params: Params, name: str, grads: Grads) -> Array:
    """Store the kernel and bias gradients of ``_dense_apply`` and return the input gradient."""
    kernel = params[f"{name}.kernel"]
    grads[f"{name}.kernel"] = x.reshape(-1, kernel.shape[0]).T @ dy.reshape(-1, kernel.shape[1])
    grads[f"{name}.bias"] = dy.reshape(-1, kernel.shape[1]).sum(axis=0)
    return (dy.reshape(-1, kernel.shape[1]) @ kernel.T).reshape(x.shape)


def _encoder_layer(h: Array, params: Params, prefix: str, bias: Array, heads: int, macs: MacCounter
                   ) -> tuple[Array, Any]:
    """``h + Wo Attention(LN1(h))``, then ``+ W2 GELU(W1 LN2(.) + b1) + b2`` (pre-LN)."""
    a, ln1 = layer_norm(h, params[f"{prefix}.ln1.gamma"], params[f"{prefix}.ln1.beta"])
    q = _dense_apply(a, params, f"{prefix}.attn.query", macs)
    k = _dense_apply(a, params, f"{prefix}.attn.key", macs)
    v = _dense_apply(a, params, f"{prefix}.attn.value", macs)
    context, att = attention(q, k, v, bias, heads)
    t, d = h.shape[1], h.shape[2]
    macs.add(2 * t * t * d)  # scores and weighted values, all heads together
    h = h + _dense_apply(context, params, f"{prefix}.attn.output", macs)
    b, ln2 = layer_norm(h, params[f"{prefix}.ln2.gamma"], params[f"{prefix}.ln2.beta"])
    u = _dense_apply(b, params, f"{prefix}.ff1", macs)
    g = gelu(u)
    out = h + _dense_apply(g, params, f"{prefix}.ff2", macs)
    return out, (a, ln1, context, att, b, ln2, u, g)


def _encoder_layer_backward(dout: Array, cache: Any, params: Params, prefix: str, grads: Grads) -> Array:
    a, ln1, context, att, b, ln2, u, g = cache
    dg = _dense_grads(g, dout, params, f"{prefix}.ff2", grads)
    db = _dense_grads(b, gelu_backward(dg, u), params, f"{prefix}.ff1", grads)
    dh_ln2, grads[f"{prefix}.ln2.gamma"], grads[f"{prefix}.ln2.beta"] = layer_norm_backward(
        db, ln2, params[f"{prefix}.ln2.gamma"])
    dh = dout + dh_ln2
    dcontext = _dense_grads(context, dh, params, f"{prefix}.attn.output", grads)
    dq, dk, dv = attention_backward(dcontext, att)
    da = (_dense_grads(a, dq, params, f"{prefix}.attn.query", grads)
          + _dense_grads(a, dk, params, f"{prefix}.attn.key", grads)
          + _dense_grads(a, dv, params, f"{prefix}.attn.value", grads))
    dx_ln1, grads[f"{prefix}.ln1.gamma"], grads[f"{prefix}.ln1.beta"] = layer_norm_backward(
        da, ln1, params[f"{prefix}.ln1.gamma"])
    return dh + dx_ln1


def _transformer(
    params: Params, phase: str, batch: Batch, macs: MacCounter, gradients: bool, ties: bool
) -> Outcome:
    """Token + learned position embeddings, pre-LN encoder layers with the key-padding mask, final layer norm,
    mean over the valid tokens, classifier. Backpropagation by hand; smooth (GELU): no near-ties."""
    if batch.mask is None:
        raise ValueError("the transformer workload needs a batch with sequence lengths")
    spec = get_workload("transformer")
    heads, layers = spec.extra["heads"], spec.extra["layers"]
    table, positions = params["embedding.table"], params["position.table"]
    tokens = batch.x
    mask = batch.mask.astype(table.dtype)
    steps = tokens.shape[1]
    bias = key_padding_bias(mask).astype(table.dtype)
    h = table[tokens] + positions[None, :steps]
    caches = []
    for i in range(layers):
        h, cache = _encoder_layer(h, params, f"layer{i}", bias, heads, macs)
        caches.append(cache)
    final, final_cache = layer_norm(h, params["final_ln.gamma"], params["final_ln.beta"])
    pooled_sum = (final * mask[:, :, None]).sum(axis=1)
    logits, loss, grads, dpooled = _mean_pooled_classifier(pooled_sum, mask, params, batch, macs, gradients)
    if dpooled is None:
        return logits, loss, grads, None
    dfinal = dpooled[:, None, :] * mask[:, :, None]
    dh, grads["final_ln.gamma"], grads["final_ln.beta"] = layer_norm_backward(
        dfinal, final_cache, params["final_ln.gamma"])
    for i in range(layers - 1, -1, -1):
        dh = _encoder_layer_backward(dh, caches[i], params, f"layer{i}", grads)
    grads["position.table"] = np.zeros_like(positions)
    grads["position.table"][:steps] = dh.sum(axis=0)
    grad_table = np.zeros_like(table)
    np.add.at(grad_table, tokens.ravel(), dh.reshape(-1, dh.shape[-1]))
    grads["embedding.table"] = grad_table
    return logits, loss, grads, None


# A reference network, what a workload plugin's ``reference`` names (docs/plugins.md): (parameters by canonical
# name in float64 or float32, phase, batch, MAC counter, whether to compute gradients, whether to analyse
# near-ties) -> (output, loss, gradients by canonical name of every trainable parameter, TieAllowance or None).
# The dtype of the parameters is the dtype to compute in: the same code gives the float64 reference and its
# float32 shadow. The built-ins' are the functions above, named in dlbench.workloads.builtin.
Network = Callable[[Params, str, Batch, MacCounter, bool, bool], Outcome]


class NoReference(DlbenchError):
    """A workload whose plugin provides no NumPy reference: verify compares its frameworks with each other."""


def _conv_layer(workload: str) -> Network:
    """A layer benchmark (``conv:alexnet.conv2``): the one convolution, its output, the loss
    ``sum(y**2) / (2 N)`` (so ``dL/dy = y / N``) and the kernel and bias gradients."""
    layer = get_workload(workload).convolutions[0]
    conv = Conv2D(layer.name, stride=layer.stride, pad=layer.padding)

    def network(params: Params, phase: str, batch: Batch, macs: MacCounter, gradients: bool,
                ties: bool) -> Outcome:
        y, cache = conv.forward(batch.x, params, macs)
        y = _stored(y)
        n = batch.x.shape[0]
        loss = float((y.astype(np.float64) ** 2).sum() / (2 * n))
        grads: Grads = {}
        if gradients:
            conv.backward(y / n, cache, params, grads, need_dx=False)
        return y, loss, grads, None

    return network


def network_of(workload: str) -> Network:
    """The reference of a network (the one its workload plugin names) or of a layer benchmark; NoReference
    for a plugin that names none, a one-line error for one that does not import."""
    if get_workload(workload).is_layer:
        return _conv_layer(workload)
    target = get_plugin(workload).reference
    if not target:
        raise NoReference(f"workload {workload!r} has no NumPy reference: its implementations are compared "
                          f"with each other only")
    try:
        found = importlib.metadata.EntryPoint(workload, target, "dlbench.workloads").load()
    except Exception as exc:  # noqa: BLE001 - the plugin's bug, one line
        raise DlbenchError(f"workload {workload!r}: its reference {target} failed to import: "
                           f"{type(exc).__name__}: {exc}") from None
    return cast(Network, found)


def _run(
    workload: str,
    phase: str,
    batch: Batch,
    weights: Mapping[str, Array],
    dtype: type,
    gradients: bool,
    ties: bool,
) -> tuple[Evaluation, int, TieAllowance | None]:
    """One evaluation at one precision: float64 for the reference, float32 for its noise calibration."""
    trainable = get_workload(workload).phase(phase).trainable
    params: dict[str, Array] = {name: np.asarray(value, dtype=dtype) for name, value in weights.items()}
    x = batch.x if batch.lengths is not None else np.asarray(batch.x, dtype=dtype)  # token ids stay integers
    cast = Batch(x, np.asarray(batch.y), batch.lengths)
    macs = MacCounter()
    output, loss, grads, allowance = network_of(workload)(params, phase, cast, macs, gradients, ties)
    if gradients and set(grads) != set(trainable):
        raise AssertionError(
            f"reference computed gradients {sorted(grads)}, phase trains {sorted(trainable)}"
        )
    ordered = {name: grads[name] for name in trainable} if gradients else {}
    return Evaluation(output=output, loss=loss, gradients=ordered), macs.total, allowance


def float32_noise(main: Evaluation, shadow: Evaluation) -> dict[str, Array]:
    """Per tensor, ``NOISE_FACTOR`` x the largest distance between the same computation in float32 and in
    float64. Where a tensor is a near-cancelling sum (the LSTM's bias gradients at the flat canonical
    initialisation, batch 2: 2e-4 of their own scale), float32 rounding is a visible fraction of it, and
    this says by how much. One number per tensor, not per element: the float32 path is one sample of the
    rounding, and another framework's rounding lands on other elements."""

    def noise(a: Array | float, b: Array | float) -> Array:
        diff = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
        return np.asarray(NOISE_FACTOR * float(diff.max()) if diff.size else 0.0)

    allowance = {"output": noise(main.output, shadow.output), "loss": noise(main.loss, shadow.loss)}
    allowance.update({name: noise(g, shadow.gradients[name]) for name, g in main.gradients.items()})
    return allowance


def reference_evaluate(
    workload: str,
    phase: str,
    batch: Batch,
    weights: Mapping[str, Array],
    gradients: bool = True,
    calibrate: bool = True,
    precision: str = "float32",
) -> Reference:
    """Forward output, loss and (unless ``gradients`` is False) the gradient of every trainable parameter of
    ``workload``/``phase``, computed in float64 from the canonical weights and batch.

    With a low ``precision``, the ReLU / max-pool networks (LeNet, AlexNet) round each layer's output to that
    precision's storage, as every framework's bf16/fp16 activations are: their ReLU and max-pool decisions
    (exact ties of rounded values included) are then the frameworks' decisions, which a float64 activation
    would not reproduce. The LSTM likewise stores its state (h, c) rounded at every step, as the frameworks
    do; over 100 steps float64 states would drift away from every bf16 recurrence. The arithmetic itself
    stays float64.

    With ``calibrate``, the same computation also runs in float32 and the near-ties of the ReLU / max-pool
    networks are analysed; :attr:`Reference.allowance` then holds, per tensor, the float32 allowance (a
    scalar noise level plus the elementwise near-tie envelope) that comparisons subtract from the absolute
    difference before the workload's relative tolerance judges."""
    global _activation_precision
    _activation_precision = precision
    try:
        evaluation, macs, ties = _run(
            workload, phase, batch, weights, np.float64, gradients, calibrate and gradients
        )
    finally:
        _activation_precision = "float32"
    allowance: dict[str, Array] = {}
    if calibrate:
        shadow, _, _ = _run(workload, phase, batch, weights, np.float32, gradients, False)
        allowance = float32_noise(evaluation, shadow)
        for name, envelope in (ties.envelope if ties else {}).items():
            allowance[name] = allowance[name] + envelope
    return Reference(evaluation=evaluation, macs_per_sample=macs, ties=ties, allowance=allowance)
