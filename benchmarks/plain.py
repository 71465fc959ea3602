"""Plain references of every workload: the canonical networks written as a competent user of each framework
would write them, with the framework's own layers and nothing from dlbench's adapters.

- PyTorch: ``nn.Module`` layers (``nn.Conv2d``, ``nn.MaxPool2d``, ``nn.Linear``, ``nn.Embedding``,
  ``nn.LSTM(batch_first=True)``, ``nn.Dropout``) in an ``nn.Sequential`` or a small ``nn.Module``; the
  convolutional nets in ``channels_last`` (the layout PyTorch's performance guide recommends for
  convolutions on CPU); forward under ``torch.inference_mode()``; gradient as ``zero_grad(set_to_none=True)``
  then ``loss.backward()`` (the training-loop idiom). ``nn.LSTM`` keeps both of its biases trainable, as a
  user would leave them (512 parameters more than the canonical 131,584; their gradient is one sum).
- TensorFlow: Keras 3 layers (``Conv2D``, ``MaxPooling2D``, ``Flatten``, ``Dense``, ``Dropout``,
  ``Embedding``, ``LSTM(return_sequences=True)``) in a ``keras.Sequential`` or called in a row, each pass one
  ``tf.function`` (forward ``model(x, training=False)``, gradient a ``GradientTape`` over
  ``trainable_variables``).
- JAX: ``jax.numpy`` and ``lax`` (JAX has no layer library of its own): ``lax.conv_general_dilated``,
  ``lax.reduce_window`` max pools (what ``flax.linen.max_pool`` is), an LSTM cell under ``lax.scan`` with the
  input projection of all steps done as one matmul before it (the usual trick of a hand-written scan; Flax's
  ``nn.RNN`` over an ``LSTMCell`` projects the input inside the step instead), ``jax.jit`` of the forward and
  of ``jax.grad`` of the loss.

Same shapes, the same seeded batch (``dlbench.workloads.make_batch``) and the same canonical weights
(``dlbench.workloads.weights.initial_weights``, loaded into each framework's layers), dropout (0.5) on in
the gradient pass where the canonical network has it (AlexNet fc6/fc7, the LSTM's pooled vector), one batch
on the device, the gradient of every trainable parameter left on the device, no optimizer step. (The
transformer's plain versions, from ``transformer_plain.py``, draw their own seeded weights and batch of the
same shapes.)

``build(framework, workload, phase, batch_size)`` returns ``{"forward": call, "gradient": call}``, each call
one pass including the wait for its result; the transformer's are those of ``transformer_plain.py``.
``benchmarks/fidelity.py`` times them against dlbench's cases.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # transformer_plain, when imported from elsewhere

Timed = Callable[[], Any]
Passes = dict[str, Timed]
SIZES = (784, 400, 200, 100)  # the stacked autoencoder's widths
DROPOUT = 0.5


def data(workload: str, batch_size: int) -> tuple[dict[str, np.ndarray], Any]:
    """The canonical weights (seed 0) and the canonical batch of ``batch_size`` (seed 0)."""
    from dlbench.workloads import make_batch
    from dlbench.workloads.weights import initial_weights

    return initial_weights(workload, 0), make_batch(workload, batch_size, 0)


# ----------------------------------------------------------------------------------------------------------
# PyTorch
# ----------------------------------------------------------------------------------------------------------
def _torch_passes(model: Any, loss_of: Callable[[], Any], output_of: Callable[[], Any]) -> Passes:
    import torch

    def forward() -> Any:
        with torch.inference_mode():
            return output_of()

    def gradient() -> Any:
        model.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        return loss

    return {"forward": forward, "gradient": gradient}


def _torch_load(module: Any, kernel: np.ndarray, bias: np.ndarray, conv: bool = False) -> None:
    import torch

    with torch.no_grad():
        if conv:  # HWIO -> OIHW
            module.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        else:  # [in, out] -> [out, in]
            module.weight.copy_(torch.from_numpy(kernel.T.copy()))
        module.bias.copy_(torch.from_numpy(bias))


def _hwc_rows(kernel: np.ndarray, hwc: tuple[int, int, int]) -> np.ndarray:
    """A dense kernel whose rows follow the canonical H, W, C flatten, reordered for a C, H, W flatten."""
    h, w, c = hwc
    return kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)


def torch_convnet(workload: str, batch_size: int) -> Passes:
    import torch
    import torch.nn.functional as F
    from torch import nn

    weights, batch = data(workload, batch_size)
    if workload == "lenet":
        convs = [nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)]
        dense = [nn.Linear(800, 500), nn.Linear(500, 10)]
        model = nn.Sequential(convs[0], nn.Tanh(), nn.MaxPool2d(2), convs[1], nn.Tanh(), nn.MaxPool2d(2),
                              nn.Flatten(), dense[0], nn.ReLU(), dense[1])
        conv_names, dense_names, flat = ("conv1", "conv2"), ("fc1", "fc2"), (4, 4, 50)
    else:
        convs = [nn.Conv2d(3, 96, 11, stride=4), nn.Conv2d(96, 256, 5, padding=2),
                 nn.Conv2d(256, 384, 3, padding=1), nn.Conv2d(384, 384, 3, padding=1),
                 nn.Conv2d(384, 256, 3, padding=1)]
        dense = [nn.Linear(9216, 4096), nn.Linear(4096, 4096), nn.Linear(4096, 1000)]
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731  (as torchvision's AlexNet)
        model = nn.Sequential(convs[0], relu(), nn.MaxPool2d(3, 2), convs[1], relu(), nn.MaxPool2d(3, 2),
                              convs[2], relu(), convs[3], relu(), convs[4], relu(), nn.MaxPool2d(3, 2),
                              nn.Flatten(), dense[0], relu(), nn.Dropout(DROPOUT), dense[1], relu(),
                              nn.Dropout(DROPOUT), dense[2])
        conv_names, dense_names = ("conv1", "conv2", "conv3", "conv4", "conv5"), ("fc6", "fc7", "fc8")
        flat = (6, 6, 256)
    for module, name in zip(convs, conv_names, strict=True):
        _torch_load(module, weights[f"{name}.kernel"], weights[f"{name}.bias"], conv=True)
    for i, (module, name) in enumerate(zip(dense, dense_names, strict=True)):
        kernel = _hwc_rows(weights[f"{name}.kernel"], flat) if i == 0 else weights[f"{name}.kernel"]
        _torch_load(module, kernel, weights[f"{name}.bias"])
    model = model.to(memory_format=torch.channels_last)
    x = torch.from_numpy(batch.x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    labels = torch.from_numpy(batch.y).long()

    def loss_of() -> Any:
        model.train()
        return F.cross_entropy(model(x), labels)

    def output_of() -> Any:
        model.eval()
        return model(x)

    return _torch_passes(model, loss_of, output_of)


def torch_autoencoder(phase: str, batch_size: int) -> Passes:
    """Pretraining k: the frozen encoders below run under ``no_grad``, the decoder is ``F.linear`` with the
    transpose of encoder k's weight (tied) and its own bias; fine-tuning: ``nn.Sequential`` of the encoders
    and the classifier."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    weights, batch = data("autoencoder", batch_size)
    x = torch.from_numpy(batch.x)
    labels = torch.from_numpy(batch.y).long()
    level = 0 if phase == "finetune" else int(phase[-1])
    depth = 3 if not level else level
    encoders = [nn.Linear(SIZES[i], SIZES[i + 1]) for i in range(depth)]
    for i, enc in enumerate(encoders):
        _torch_load(enc, weights[f"enc{i + 1}.kernel"], weights[f"enc{i + 1}.bias"])
    if not level:
        classifier = nn.Linear(100, 10)
        _torch_load(classifier, weights["classifier.kernel"], weights["classifier.bias"])
        model = nn.Sequential(*(m for enc in encoders for m in (enc, nn.Sigmoid())), classifier)
        return _torch_passes(model, lambda: F.cross_entropy(model(x), labels), lambda: model(x))

    frozen, own = encoders[:-1], encoders[-1]
    for enc in frozen:
        enc.requires_grad_(False)
    decoder_bias = nn.Parameter(torch.from_numpy(weights[f"dec{level}.bias"].copy()))
    model = nn.ModuleList([own])
    model.register_parameter("decoder_bias", decoder_bias)

    def target() -> Any:
        h = x
        with torch.no_grad():
            for enc in frozen:
                h = torch.sigmoid(enc(h))
        return h

    def rebuild(h: Any) -> Any:
        return torch.sigmoid(F.linear(torch.sigmoid(own(h)), own.weight.t(), decoder_bias))

    def loss_of() -> Any:
        t = target()
        return (rebuild(t) - t).square().sum() / (2 * batch_size)

    return _torch_passes(model, loss_of, lambda: rebuild(target()))


def torch_lstm(batch_size: int) -> Passes:
    import torch
    import torch.nn.functional as F
    from torch import nn

    weights, batch = data("lstm", batch_size)

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(10_000, 128)
            self.lstm = nn.LSTM(128, 128, batch_first=True)
            self.dropout = nn.Dropout(DROPOUT)
            self.fc = nn.Linear(128, 2)

        def forward(self, tokens: Any, mask: Any) -> Any:
            states, _ = self.lstm(self.embedding(tokens))
            pooled = (states * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
            return self.fc(self.dropout(pooled))

    model = Classifier()
    with torch.no_grad():
        model.embedding.weight.copy_(torch.from_numpy(weights["embedding.table"]))
        model.lstm.weight_ih_l0.copy_(torch.from_numpy(weights["lstm.input_kernel"].T.copy()))
        model.lstm.weight_hh_l0.copy_(torch.from_numpy(weights["lstm.recurrent_kernel"].T.copy()))
        model.lstm.bias_ih_l0.copy_(torch.from_numpy(weights["lstm.bias"]))
        model.lstm.bias_hh_l0.zero_()
    _torch_load(model.fc, weights["classifier.kernel"], weights["classifier.bias"])
    tokens, labels = torch.from_numpy(batch.x).long(), torch.from_numpy(batch.y).long()
    mask = torch.from_numpy(batch.mask)

    def loss_of() -> Any:
        model.train()
        return F.cross_entropy(model(tokens, mask), labels)

    def output_of() -> Any:
        model.eval()
        return model(tokens, mask)

    return _torch_passes(model, loss_of, output_of)


# ----------------------------------------------------------------------------------------------------------
# TensorFlow (Keras 3 layers)
# ----------------------------------------------------------------------------------------------------------
def _tf_passes(model: Any, inputs: tuple[Any, ...], labels: Any,
               loss_fn: Callable[[Any, Any], Any] | None = None) -> Passes:
    import tensorflow as tf

    variables = model.trainable_variables

    def cross_entropy(out: Any, labels: Any) -> Any:
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=out))

    loss_of = loss_fn or cross_entropy

    @tf.function
    def forward() -> Any:
        return model(*inputs, training=False)

    @tf.function
    def gradient() -> Any:
        with tf.GradientTape() as tape:
            loss = loss_of(model(*inputs, training=True), labels)
        return tape.gradient(loss, variables)

    return {"forward": forward, "gradient": gradient}


def tf_convnet(workload: str, batch_size: int) -> Passes:
    import keras
    import tensorflow as tf
    from keras import layers

    weights, batch = data(workload, batch_size)
    if workload == "lenet":
        convs = [layers.Conv2D(20, 5, activation="tanh"), layers.Conv2D(50, 5, activation="tanh")]
        dense = [layers.Dense(500, activation="relu"), layers.Dense(10)]
        stack = [convs[0], layers.MaxPooling2D(2), convs[1], layers.MaxPooling2D(2), layers.Flatten(), *dense]
        names = ("conv1", "conv2", "fc1", "fc2")
    else:
        convs = [layers.Conv2D(96, 11, strides=4, activation="relu"),
                 layers.Conv2D(256, 5, padding="same", activation="relu"),
                 layers.Conv2D(384, 3, padding="same", activation="relu"),
                 layers.Conv2D(384, 3, padding="same", activation="relu"),
                 layers.Conv2D(256, 3, padding="same", activation="relu")]
        dense = [layers.Dense(4096, activation="relu"), layers.Dense(4096, activation="relu"), layers.Dense(1000)]
        pool = lambda: layers.MaxPooling2D(3, 2)  # noqa: E731
        stack = [convs[0], pool(), convs[1], pool(), convs[2], convs[3], convs[4], pool(), layers.Flatten(),
                 dense[0], layers.Dropout(DROPOUT), dense[1], layers.Dropout(DROPOUT), dense[2]]
        names = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
    model = keras.Sequential([keras.Input(batch.x.shape[1:], batch_size=batch_size), *stack])
    for layer, name in zip([*convs, *dense], names, strict=True):  # HWIO and [in, out]: Keras' own layouts
        layer.set_weights([weights[f"{name}.kernel"], weights[f"{name}.bias"]])
    return _tf_passes(model, (tf.constant(batch.x),), tf.constant(batch.y.astype(np.int32)))


def tf_autoencoder(phase: str, batch_size: int) -> Passes:
    """Pretraining k: the frozen encoders are non-trainable ``Dense`` layers, the tied decoder a small layer
    that multiplies by the transpose of encoder k's kernel and adds its own bias; fine-tuning: a
    ``keras.Sequential`` of the encoders and the classifier."""
    import keras
    import tensorflow as tf
    from keras import layers

    weights, batch = data("autoencoder", batch_size)
    x, labels = tf.constant(batch.x), tf.constant(batch.y.astype(np.int32))
    level = 0 if phase == "finetune" else int(phase[-1])
    depth = 3 if not level else level
    encoders = [layers.Dense(SIZES[i + 1], activation="sigmoid") for i in range(depth)]
    if not level:
        classifier = layers.Dense(10)
        model = keras.Sequential([keras.Input((784,), batch_size=batch_size), *encoders, classifier])
        for i, enc in enumerate(encoders):
            enc.set_weights([weights[f"enc{i + 1}.kernel"], weights[f"enc{i + 1}.bias"]])
        classifier.set_weights([weights["classifier.kernel"], weights["classifier.bias"]])
        return _tf_passes(model, (x,), labels)

    class TiedDecoder(layers.Layer):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def build(self, input_shape: Any) -> None:
            self.bias = self.add_weight(shape=(self.encoder.kernel.shape[0],), initializer="zeros")

        def call(self, h: Any) -> Any:
            return tf.sigmoid(tf.matmul(h, self.encoder.kernel, transpose_b=True) + self.bias)

    class Pretrain(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.frozen, self.own = encoders[:-1], encoders[-1]
            self.decoder = TiedDecoder(self.own)

        def call(self, x: Any, training: bool = False) -> Any:
            target = x
            for enc in self.frozen:
                target = enc(target)
            return self.decoder(self.own(target)), target

    model = Pretrain()
    model(x)  # builds the layers
    for i, enc in enumerate(encoders):
        enc.set_weights([weights[f"enc{i + 1}.kernel"], weights[f"enc{i + 1}.bias"]])
        enc.trainable = i == depth - 1
    model.decoder.bias.assign(weights[f"dec{level}.bias"])

    def reconstruction(pair: Any, _labels: Any) -> Any:
        rebuilt, target = pair
        return tf.reduce_sum(tf.square(rebuilt - target)) / (2.0 * batch_size)

    passes = _tf_passes(model, (x,), labels, reconstruction)
    forward_pair = passes["forward"]
    passes["forward"] = lambda: forward_pair()[0]
    return passes


def tf_lstm(batch_size: int) -> Passes:
    import keras
    import tensorflow as tf
    from keras import layers

    weights, batch = data("lstm", batch_size)

    class Classifier(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = layers.Embedding(10_000, 128)
            self.lstm = layers.LSTM(128, return_sequences=True)
            self.dropout = layers.Dropout(DROPOUT)
            self.fc = layers.Dense(2)

        def call(self, tokens: Any, mask: Any, training: bool = False) -> Any:
            states = self.lstm(self.embedding(tokens))
            pooled = tf.reduce_sum(states * mask[:, :, None], axis=1) / tf.reduce_sum(mask, 1, keepdims=True)
            return self.fc(self.dropout(pooled, training=training))

    model = Classifier()
    tokens, mask = tf.constant(batch.x.astype(np.int32)), tf.constant(batch.mask)
    model(tokens, mask)  # builds the layers
    model.embedding.set_weights([weights["embedding.table"]])
    model.lstm.set_weights([weights["lstm.input_kernel"], weights["lstm.recurrent_kernel"], weights["lstm.bias"]])
    model.fc.set_weights([weights["classifier.kernel"], weights["classifier.bias"]])
    return _tf_passes(model, (tokens, mask), tf.constant(batch.y.astype(np.int32)))


# ----------------------------------------------------------------------------------------------------------
# JAX
# ----------------------------------------------------------------------------------------------------------
def _jax_passes(output: Callable[..., Any], loss: Callable[..., Any], params: Any, inputs: tuple[Any, ...],
                labels: Any, key: Any = None) -> Passes:
    import jax

    forward_fn, gradient_fn = jax.jit(output), jax.jit(jax.grad(loss))
    forward_args = (params, *inputs)
    gradient_args = (params, *inputs, labels) if key is None else (params, *inputs, labels, key)
    return {"forward": lambda: jax.block_until_ready(forward_fn(*forward_args)),
            "gradient": lambda: jax.block_until_ready(gradient_fn(*gradient_args))}


def _jax_cross_entropy(logits: Any, labels: Any) -> Any:
    import jax
    import jax.numpy as jnp

    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1).mean()


def _jax_dropout(x: Any, key: Any) -> Any:
    import jax
    import jax.numpy as jnp

    if key is None:
        return x
    keep = jax.random.bernoulli(key, 1.0 - DROPOUT, x.shape)
    return jnp.where(keep, x / (1.0 - DROPOUT), 0.0)


def jax_convnet(workload: str, batch_size: int) -> Passes:
    import jax
    import jax.numpy as jnp
    from jax import lax

    weights, batch = data(workload, batch_size)
    params = jax.device_put(weights)
    x, labels = jnp.asarray(batch.x), jnp.asarray(batch.y.astype(np.int32))
    dims = ("NHWC", "HWIO", "NHWC")

    def conv(p: Any, name: str, h: Any, stride: int = 1, pad: int = 0) -> Any:
        out = lax.conv_general_dilated(h, p[f"{name}.kernel"], (stride, stride), [(pad, pad)] * 2,
                                       dimension_numbers=dims)
        return out + p[f"{name}.bias"]

    def pool(h: Any, size: int, stride: int) -> Any:
        return lax.reduce_window(h, -jnp.inf, lax.max, (1, size, size, 1), (1, stride, stride, 1), "VALID")

    def dense(p: Any, name: str, h: Any) -> Any:
        return h @ p[f"{name}.kernel"] + p[f"{name}.bias"]

    def lenet(p: Any, x: Any, key: Any = None) -> Any:
        h = pool(jnp.tanh(conv(p, "conv1", x)), 2, 2)
        h = pool(jnp.tanh(conv(p, "conv2", h)), 2, 2)
        return dense(p, "fc2", jax.nn.relu(dense(p, "fc1", h.reshape(h.shape[0], -1))))

    def alexnet(p: Any, x: Any, key: Any = None) -> Any:
        relu = jax.nn.relu
        h = pool(relu(conv(p, "conv1", x, 4)), 3, 2)
        h = pool(relu(conv(p, "conv2", h, 1, 2)), 3, 2)
        h = relu(conv(p, "conv3", h, 1, 1))
        h = relu(conv(p, "conv4", h, 1, 1))
        h = pool(relu(conv(p, "conv5", h, 1, 1)), 3, 2).reshape(x.shape[0], -1)
        k6, k7 = (None, None) if key is None else jax.random.split(key)
        h = _jax_dropout(relu(dense(p, "fc6", h)), k6)
        h = _jax_dropout(relu(dense(p, "fc7", h)), k7)
        return dense(p, "fc8", h)

    net = lenet if workload == "lenet" else alexnet
    key = None if workload == "lenet" else jax.random.key(0)

    def loss(p: Any, x: Any, labels: Any, key: Any = None) -> Any:
        return _jax_cross_entropy(net(p, x, key), labels)

    return _jax_passes(net, loss, params, (x,), labels, key)


def jax_autoencoder(phase: str, batch_size: int) -> Passes:
    """The frozen encoders of a pretraining phase are arguments the gradient is not taken for."""
    import jax
    import jax.numpy as jnp

    weights, batch = data("autoencoder", batch_size)
    x, labels = jnp.asarray(batch.x), jnp.asarray(batch.y.astype(np.int32))
    level = 0 if phase == "finetune" else int(phase[-1])

    def encode(p: Any, h: Any, first: int, last: int) -> Any:
        for i in range(first, last + 1):
            h = jax.nn.sigmoid(h @ p[f"enc{i}.kernel"] + p[f"enc{i}.bias"])
        return h

    if not level:
        params = jax.device_put({k: v for k, v in weights.items() if k.startswith(("enc", "classifier"))})

        def logits(p: Any, x: Any) -> Any:
            return encode(p, x, 1, 3) @ p["classifier.kernel"] + p["classifier.bias"]

        return _jax_passes(logits, lambda p, x, y: _jax_cross_entropy(logits(p, x), y), params, (x,), labels)

    own = {f"enc{level}.kernel", f"enc{level}.bias", f"dec{level}.bias"}
    frozen_names = {f"enc{i}.{part}" for i in range(1, level) for part in ("kernel", "bias")}
    params = jax.device_put({k: weights[k] for k in own})
    frozen = jax.device_put({k: weights[k] for k in frozen_names})

    def pair(p: Any, frozen: Any, x: Any) -> Any:
        target = encode(frozen, x, 1, level - 1)
        code = jax.nn.sigmoid(target @ p[f"enc{level}.kernel"] + p[f"enc{level}.bias"])
        return jax.nn.sigmoid(code @ p[f"enc{level}.kernel"].T + p[f"dec{level}.bias"]), target

    def loss(p: Any, frozen: Any, x: Any, labels: Any) -> Any:
        rebuilt, target = pair(p, frozen, x)
        return jnp.sum((rebuilt - target) ** 2) / (2 * batch_size)

    return _jax_passes(lambda p, frozen, x: pair(p, frozen, x)[0], loss, params, (frozen, x), labels)


def jax_lstm(batch_size: int) -> Passes:
    import jax
    import jax.numpy as jnp
    from jax import lax

    weights, batch = data("lstm", batch_size)
    params = jax.device_put(weights)
    tokens, mask = jnp.asarray(batch.x.astype(np.int32)), jnp.asarray(batch.mask)
    labels = jnp.asarray(batch.y.astype(np.int32))

    def logits(p: Any, tokens: Any, mask: Any, key: Any = None) -> Any:
        embedded = p["embedding.table"][tokens]  # [N, T, D]
        inputs = embedded @ p["lstm.input_kernel"] + p["lstm.bias"]  # every step's input projection at once

        def cell(carry: Any, z_in: Any) -> Any:
            h, c = carry
            i, f, g, o = jnp.split(z_in + h @ p["lstm.recurrent_kernel"], 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        zeros = jnp.zeros((tokens.shape[0], 128), jnp.float32)
        _, states = lax.scan(cell, (zeros, zeros), inputs.swapaxes(0, 1))  # [T, N, H]
        pooled = (states * mask.T[:, :, None]).sum(0) / mask.sum(1, keepdims=True)
        return _jax_dropout(pooled, key) @ p["classifier.kernel"] + p["classifier.bias"]

    def loss(p: Any, tokens: Any, mask: Any, labels: Any, key: Any) -> Any:
        return _jax_cross_entropy(logits(p, tokens, mask, key), labels)

    return _jax_passes(logits, loss, params, (tokens, mask), labels, jax.random.key(0))


# ----------------------------------------------------------------------------------------------------------
def build(framework: str, workload: str, phase: str, batch_size: int) -> Passes:
    """The plain forward and gradient calls of ``workload`` (``phase`` for the autoencoder) in ``framework``."""
    if workload == "transformer":
        import transformer_plain

        return transformer_plain.PLAIN[framework](batch_size)
    builders: dict[str, dict[str, Callable[[], Passes]]] = {
        "torch": {"lenet": lambda: torch_convnet("lenet", batch_size),
                  "alexnet": lambda: torch_convnet("alexnet", batch_size),
                  "autoencoder": lambda: torch_autoencoder(phase, batch_size),
                  "lstm": lambda: torch_lstm(batch_size)},
        "tensorflow": {"lenet": lambda: tf_convnet("lenet", batch_size),
                       "alexnet": lambda: tf_convnet("alexnet", batch_size),
                       "autoencoder": lambda: tf_autoencoder(phase, batch_size),
                       "lstm": lambda: tf_lstm(batch_size)},
        "jax": {"lenet": lambda: jax_convnet("lenet", batch_size),
                "alexnet": lambda: jax_convnet("alexnet", batch_size),
                "autoencoder": lambda: jax_autoencoder(phase, batch_size),
                "lstm": lambda: jax_lstm(batch_size)},
    }
    return builders[framework][workload]()
