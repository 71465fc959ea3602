"""A framework-independent NumPy reference of every canonical workload phase.

Why it exists: three frameworks that agree with each other could still all differ from the definition in
``workloads.md`` (a shared misreading, a common default such as two LSTM biases). This module computes the
definition directly, in float64 and with manual backpropagation, so that ``dlbench verify`` checks a single
installed framework too, and so that agreement means agreement with the definition.

Everything is in the canonical layout (NHWC activations, HWIO kernels, ``[in, out]`` dense kernels, LSTM
gates i, f, g, o) and uses the canonical names. The multiply-accumulates are counted from the shapes that are
actually computed, independently of ``dlbench.workloads.definitions``, so that the declared MACs are checked
rather than repeated. Nothing here is optimised beyond im2col: batches in ``verify`` are tiny.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from dlbench.frameworks.base import Evaluation
from dlbench.workloads import Batch, get_workload

Array = np.ndarray
Params = Mapping[str, Array]
Grads = dict[str, Array]


@dataclass(frozen=True)
class Reference:
    """The reference evaluation of one workload phase, plus the MACs per sample it actually performed."""

    evaluation: Evaluation
    macs_per_sample: int


class MacCounter:
    """Accumulates multiply-accumulates per sample while the forward pass runs (layers add the count of one
    sample, computed from the shapes they really process)."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, macs: int) -> None:
        self.total += int(macs)


# ----------------------------------------------------------------------------------------------------------
# Elementwise pieces and the loss


def sigmoid(x: Array) -> Array:
    """Logistic sigmoid written through tanh: exact, and free of the overflow warnings of 1/(1+exp(-x))."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softmax_cross_entropy(logits: Array, labels: Array) -> tuple[float, Array]:
    """Mean softmax cross-entropy on integer labels and its gradient with respect to the logits."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = float(-log_probs[rows, labels].mean())
    dlogits = np.exp(log_probs)
    dlogits[rows, labels] -= 1.0
    return loss, dlogits / n


def reconstruction_loss(reconstruction: Array, target: Array) -> tuple[float, Array]:
    """``sum((x' - x)^2) / (2 * batch)`` and its gradient with respect to the reconstruction."""
    n = reconstruction.shape[0]
    diff = reconstruction - target
    return float((diff * diff).sum() / (2.0 * n)), diff / n


# ----------------------------------------------------------------------------------------------------------
# Layers of the two convolutional networks. Each forward returns (output, cache); backward takes the output
# gradient and the cache, stores parameter gradients in ``grads`` and returns the input gradient if asked.


class Layer(ABC):
    @abstractmethod
    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]: ...

    @abstractmethod
    def backward(self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool) -> Array | None: ...


def _im2col(x: Array, kh: int, kw: int, stride: int) -> tuple[Array, int, int]:
    """Patches of an NHWC tensor as rows ``(n, oh, ow)`` x columns ``(i, j, c)``: the HWIO kernel's order."""
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # N, OH, OW, C, kh, kw
    n, oh, ow, c = windows.shape[:4]
    cols = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kh * kw * c)
    return cols, oh, ow


@dataclass(frozen=True)
class Conv2D(Layer):
    """Convolution with bias, NHWC input, HWIO kernel, symmetric zero padding."""

    name: str
    stride: int = 1
    pad: int = 0

    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]:
        kernel, bias = params[f"{self.name}.kernel"], params[f"{self.name}.bias"]
        kh, kw, cin, cout = kernel.shape
        if x.shape[-1] != cin:
            raise ValueError(f"{self.name}: input has {x.shape[-1]} channels, kernel expects {cin}")
        padded = np.pad(x, ((0, 0), (self.pad, self.pad), (self.pad, self.pad), (0, 0))) if self.pad else x
        cols, oh, ow = _im2col(padded, kh, kw, self.stride)
        y = cols @ kernel.reshape(-1, cout) + bias
        macs.add(oh * ow * cout * kh * kw * cin)
        return y.reshape(x.shape[0], oh, ow, cout), (cols, padded.shape)

    def backward(self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool) -> Array | None:
        cols, padded_shape = cache
        kernel = params[f"{self.name}.kernel"]
        kh, kw, cin, cout = kernel.shape
        n, oh, ow, _ = dy.shape
        flat = dy.reshape(-1, cout)
        grads[f"{self.name}.kernel"] = (cols.T @ flat).reshape(kernel.shape)
        grads[f"{self.name}.bias"] = flat.sum(axis=0)
        if not need_dx:
            return None
        dcols = (flat @ kernel.reshape(-1, cout).T).reshape(n, oh, ow, kh, kw, cin)
        dpadded = np.zeros(padded_shape)
        s = self.stride
        for i in range(kh):
            for j in range(kw):
                dpadded[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :] += dcols[:, :, :, i, j, :]
        if self.pad:
            p = self.pad
            return dpadded[:, p:-p, p:-p, :]
        return dpadded


@dataclass(frozen=True)
class Activation(Layer):
    kind: str  # "tanh" | "relu"

    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]:
        if self.kind == "tanh":
            y = np.tanh(x)
            return y, y
        if self.kind == "relu":
            return np.maximum(x, 0.0), x > 0
        raise ValueError(f"unknown activation {self.kind!r}")

    def backward(self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool) -> Array | None:
        if self.kind == "tanh":
            return dy * (1.0 - cache * cache)
        return dy * cache


@dataclass(frozen=True)
class MaxPool(Layer):
    """Valid max pooling (possibly overlapping). The gradient goes to the first maximum of each window."""

    size: int
    stride: int

    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]:
        k, s = self.size, self.stride
        windows = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]  # N, OH, OW, C, k, k
        flat = windows.reshape(*windows.shape[:4], k * k)
        arg = flat.argmax(axis=-1)
        y = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
        return y, (arg, x.shape)

    def backward(self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool) -> Array | None:
        arg, shape = cache
        k, s = self.size, self.stride
        _, oh, ow, _ = dy.shape
        dx = np.zeros(shape)
        for index in range(k * k):
            i, j = divmod(index, k)
            dx[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :] += np.where(arg == index, dy, 0.0)
        return dx


class Flatten(Layer):
    """NHWC feature map to vectors in H, W, C order: the canonical flatten order of ``workloads.md``."""

    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]:
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool) -> Array | None:
        return dy.reshape(cache)


@dataclass(frozen=True)
class Dense(Layer):
    name: str

    def forward(self, x: Array, params: Params, macs: MacCounter) -> tuple[Array, Any]:
        kernel, bias = params[f"{self.name}.kernel"], params[f"{self.name}.bias"]
        macs.add(kernel.shape[0] * kernel.shape[1])
        return x @ kernel + bias, x

    def backward(self, dy: Array, cache: Any, params: Params, grads: Grads, need_dx: bool) -> Array | None:
        grads[f"{self.name}.kernel"] = cache.T @ dy
        grads[f"{self.name}.bias"] = dy.sum(axis=0)
        return dy @ params[f"{self.name}.kernel"].T if need_dx else None


LENET: tuple[Layer, ...] = (
    Conv2D("conv1"), Activation("tanh"), MaxPool(2, 2),
    Conv2D("conv2"), Activation("tanh"), MaxPool(2, 2),
    Flatten(), Dense("fc1"), Activation("relu"), Dense("fc2"),
)

ALEXNET: tuple[Layer, ...] = (
    Conv2D("conv1", stride=4), Activation("relu"), MaxPool(3, 2),
    Conv2D("conv2", pad=2), Activation("relu"), MaxPool(3, 2),
    Conv2D("conv3", pad=1), Activation("relu"),
    Conv2D("conv4", pad=1), Activation("relu"),
    Conv2D("conv5", pad=1), Activation("relu"), MaxPool(3, 2),
    Flatten(), Dense("fc6"), Activation("relu"), Dense("fc7"), Activation("relu"), Dense("fc8"),
)


def _sequential_classifier(
    layers: Sequence[Layer], params: Params, batch: Batch, macs: MacCounter, gradients: bool
) -> tuple[Array, float, Grads]:
    caches = []
    h = batch.x
    for layer in layers:
        h, cache = layer.forward(h, params, macs)
        caches.append(cache)
    loss, dh = softmax_cross_entropy(h, batch.y)
    grads: Grads = {}
    if gradients:
        grad: Array | None = dh
        for index in range(len(layers) - 1, -1, -1):
            assert grad is not None
            grad = layers[index].backward(grad, caches[index], params, grads, need_dx=index > 0)
    return h, loss, grads


def _lenet(params: Params, phase: str, batch: Batch, macs: MacCounter, gradients: bool) -> tuple[Array, float, Grads]:
    return _sequential_classifier(LENET, params, batch, macs, gradients)


def _alexnet(
    params: Params, phase: str, batch: Batch, macs: MacCounter, gradients: bool
) -> tuple[Array, float, Grads]:
    return _sequential_classifier(ALEXNET, params, batch, macs, gradients)


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


def _pretrain(
    params: Params, level: int, batch: Batch, macs: MacCounter, gradients: bool
) -> tuple[Array, float, Grads]:
    """One pretraining phase: the frozen encoders below ``level`` produce the target, which the encoder of
    ``level`` and its tied decoder (the transposed kernel, its own bias) reconstruct."""
    target = _encode(params, batch.x, level - 1, macs)[-1]
    kernel, enc_bias, dec_bias = (params[f"enc{level}.kernel"], params[f"enc{level}.bias"],
                                  params[f"dec{level}.bias"])
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
    return reconstruction, loss, grads


def _finetune(params: Params, batch: Batch, macs: MacCounter, gradients: bool) -> tuple[Array, float, Grads]:
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
    return logits, loss, grads


def _autoencoder(
    params: Params, phase: str, batch: Batch, macs: MacCounter, gradients: bool
) -> tuple[Array, float, Grads]:
    if phase == "finetune":
        return _finetune(params, batch, macs, gradients)
    return _pretrain(params, int(phase.removeprefix("pretrain")), batch, macs, gradients)


# ----------------------------------------------------------------------------------------------------------
# LSTM classifier


def _lstm(params: Params, phase: str, batch: Batch, macs: MacCounter, gradients: bool) -> tuple[Array, float, Grads]:
    """Embedding, one LSTM layer over all steps (gates i, f, g, o, one bias), mean of the hidden states over
    the valid steps, dense classifier. Backpropagation through time by hand."""
    if batch.mask is None:
        raise ValueError("the lstm workload needs a batch with sequence lengths")
    table, w_in, w_rec, bias = (params["embedding.table"], params["lstm.input_kernel"],
                                params["lstm.recurrent_kernel"], params["lstm.bias"])
    tokens = batch.x
    mask = batch.mask.astype(np.float64)
    n, steps = tokens.shape
    hidden = w_rec.shape[0]
    inputs = table[tokens]  # N, T, D
    z_in = inputs @ w_in  # N, T, 4H
    macs.add(steps * (w_in.size + w_rec.size))
    h = np.zeros((n, hidden))
    c = np.zeros((n, hidden))
    tape = []
    pooled = np.zeros((n, hidden))
    for t in range(steps):
        z = z_in[:, t] + h @ w_rec + bias
        i, f = sigmoid(z[:, :hidden]), sigmoid(z[:, hidden:2 * hidden])
        g, o = np.tanh(z[:, 2 * hidden:3 * hidden]), sigmoid(z[:, 3 * hidden:])
        c_prev, h_prev = c, h
        c = f * c_prev + i * g
        tanh_c = np.tanh(c)
        h = o * tanh_c
        tape.append((i, f, g, o, c_prev, h_prev, tanh_c))
        pooled += mask[:, t, None] * h
    counts = mask.sum(axis=1, keepdims=True)
    pooled /= counts
    classifier = Dense("classifier")
    logits, cache = classifier.forward(pooled, params, macs)
    loss, dlogits = softmax_cross_entropy(logits, batch.y)
    grads: Grads = {}
    if not gradients:
        return logits, loss, grads
    dpooled = classifier.backward(dlogits, cache, params, grads, need_dx=True)
    assert dpooled is not None
    dpooled = dpooled / counts
    dz_all = np.zeros_like(z_in)
    grad_rec = np.zeros_like(w_rec)
    dh_next = np.zeros((n, hidden))
    dc_next = np.zeros((n, hidden))
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
    return logits, loss, grads


Network = Callable[[Params, str, Batch, MacCounter, bool], tuple[Array, float, Grads]]
NETWORKS: dict[str, Network] = {"lenet": _lenet, "alexnet": _alexnet, "autoencoder": _autoencoder, "lstm": _lstm}


def reference_evaluate(
    workload: str, phase: str, batch: Batch, weights: Mapping[str, Array], gradients: bool = True
) -> Reference:
    """Forward output, loss and (unless ``gradients`` is False) the gradient of every trainable parameter of
    ``workload``/``phase``, computed in float64 from the canonical weights and batch."""
    spec = get_workload(workload)
    trainable = spec.phase(phase).trainable
    params = {name: np.asarray(value, dtype=np.float64) for name, value in weights.items()}
    x = batch.x if workload == "lstm" else np.asarray(batch.x, dtype=np.float64)
    batch64 = Batch(x, np.asarray(batch.y), batch.lengths)
    macs = MacCounter()
    output, loss, grads = NETWORKS[workload](params, phase, batch64, macs, gradients)
    if gradients and set(grads) != set(trainable):
        raise AssertionError(f"reference computed gradients {sorted(grads)}, phase trains {sorted(trainable)}")
    ordered = {name: grads[name] for name in trainable} if gradients else {}
    return Reference(evaluation=Evaluation(output=output, loss=loss, gradients=ordered), macs_per_sample=macs.total)
