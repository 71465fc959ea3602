"""The built Keras case: one Keras 3 model with the canonical weights and batch, its forward pass (the model's
inference call) and its gradient pass (the workload's loss and its gradients with respect to every trainable
weight) written with the backend's own autodiff, as Keras's guides to custom training loops write them.

* JAX: pure functions over ``model.stateless_call``, ``jax.grad`` of the loss, both compiled ahead of time with
  ``jax.jit(...).lower(...).compile()`` (the native JAX adapter's recipe); ``sync`` is ``block_until_ready``.
* TensorFlow: the model's call and a ``tf.GradientTape`` step, each traced once into a ``tf.function``
  (ConcreteFunction), as the native adapter's default variant runs; a CPU call returns when it is done.
* PyTorch: eager, the forward pass under ``torch.inference_mode`` and the gradient pass by
  ``torch.autograd.grad`` (the native adapter's recipe); CPU work is synchronous.

The loss is the workload's: mean softmax cross-entropy of the logits on the integer labels
(``keras.ops``, the same on every backend). Dropout is on in the timed gradient pass when the request says so
(``training=True``) and off for ``verify``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dlbench.frameworks.base import BuildRequest, BuiltCase, Evaluation
from dlbench.frameworks.keras.bindings import load, names_of, trainable_count
from dlbench.workloads import check_pass


def model_inputs(model: Any, request: BuildRequest) -> list[np.ndarray]:
    """The batch as the model takes it: the input alone, or (token ids, mask) for a model with two inputs."""
    batch = request.batch
    arrays = [batch.x]
    if batch.mask is not None and len(getattr(model, "inputs", None) or ()) == 2:
        arrays.append(batch.mask)
    return arrays


def loss_of(keras: Any, labels: Any, logits: Any) -> Any:
    """Mean softmax cross-entropy on integer labels: the loss of every ``logits`` workload."""
    return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))


class KerasCase(BuiltCase):
    """What every backend shares: the model, its bound weights, the traits; the passes are the backend's."""

    backend = ""

    def __init__(self, keras: Any, model: Any, bound: dict[str, Any], matched: str, request: BuildRequest) -> None:
        self._keras = keras
        self._model = model
        self._bound = bound
        self._training = request.dropout
        self._trainable = list(model.trainable_weights)
        self._names = names_of(bound, self._trainable)
        load(bound, request.weights)
        self._traits = {"keras_backend": self.backend, "keras_weights": matched}
        if request.workload.has_convolutions:
            self._traits.update(layout="NHWC", conv=request.conv)
        self._arrays = model_inputs(model, request)
        self._labels = np.asarray(request.batch.y, dtype=np.int32)

    @property
    def trainable_params(self) -> int:
        return trainable_count(self._model)

    def traits(self) -> dict[str, str]:
        return dict(self._traits)

    def prepare(self, pass_: str) -> Callable[[], Any]:
        check_pass(pass_)
        return self._forward_call() if pass_ == "forward" else self._gradient_call(self._training)

    def evaluate(self) -> Evaluation:
        """Output of the forward pass, loss and gradients of the gradient pass, dropout off."""
        output = np.asarray(self._to_numpy(self._forward_call()()), dtype=np.float32)
        loss, grads = self._loss_and_gradients()
        return Evaluation(output=output, loss=float(loss),
                          gradients={n: np.asarray(self._to_numpy(g)) for n, g in zip(self._names, grads, strict=True)})

    def close(self) -> None:
        self._model = None
        self._bound = {}
        self._trainable = []

    # ----- per backend -----
    def _forward_call(self) -> Callable[[], Any]:
        raise NotImplementedError

    def _gradient_call(self, training: bool) -> Callable[[], Any]:
        raise NotImplementedError

    def _loss_and_gradients(self) -> tuple[Any, list[Any]]:
        raise NotImplementedError

    def _to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value)


class KerasJaxCase(KerasCase):
    backend = "jax"

    def __init__(self, keras: Any, model: Any, bound: dict[str, Any], matched: str, request: BuildRequest) -> None:
        import jax

        super().__init__(keras, model, bound, matched, request)
        self._jax = jax
        self._state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables])
        self._inputs = [jax.device_put(a) for a in self._arrays]
        self._y = jax.device_put(self._labels)
        self._compiled: dict[str, Any] = {}  # pass -> its executable, for the memory query

    def _x(self, inputs: list[Any]) -> Any:
        return inputs[0] if len(inputs) == 1 else inputs

    def _forward(self, trainable: list[Any], frozen: list[Any], inputs: list[Any]) -> Any:
        output, _ = self._model.stateless_call(trainable, frozen, self._x(inputs), training=False)
        return output

    def _loss(self, trainable: list[Any], frozen: list[Any], inputs: list[Any], labels: Any, training: bool) -> Any:
        output, _ = self._model.stateless_call(trainable, frozen, self._x(inputs), training=training)
        return loss_of(self._keras, labels, output)

    def _forward_call(self) -> Callable[[], Any]:
        args = (*self._state, self._inputs)
        compiled = self._compiled["forward"] = self._jax.jit(self._forward).lower(*args).compile()
        return lambda: compiled(*args)

    def _gradient_fn(self, training: bool) -> Callable[..., Any]:
        jax = self._jax

        def gradient(trainable: list[Any], frozen: list[Any], inputs: list[Any], labels: Any) -> Any:
            return jax.grad(self._loss)(trainable, frozen, inputs, labels, training)

        return gradient

    def _gradient_call(self, training: bool) -> Callable[[], Any]:
        args = (*self._state, self._inputs, self._y)
        compiled = self._compiled["gradient"] = self._jax.jit(self._gradient_fn(training)).lower(*args).compile()
        return lambda: compiled(*args)

    def _loss_and_gradients(self) -> tuple[Any, list[Any]]:
        args = (*self._state, self._inputs, self._y)
        trainable, frozen, inputs, labels = args
        loss = self._jax.jit(lambda t, f, i, y: self._loss(t, f, i, y, False))(trainable, frozen, inputs, labels)
        grads = self._jax.jit(self._gradient_fn(False))(*args)
        return loss, list(self._jax.device_get(grads))

    def sync(self, handle: Any) -> None:
        self._jax.block_until_ready(handle)

    def peak_memory_bytes(self, pass_: str) -> int | None:
        """XLA's buffer assignment of the compiled pass, as the native JAX adapter reports it (arguments,
        outputs and temporaries, less aliased bytes)."""
        try:
            stats = self._compiled[pass_].memory_analysis()
        except Exception:  # noqa: BLE001 - an optional counter must never fail a case
            return None
        if stats is None:
            return None
        return int(stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
                   - stats.alias_size_in_bytes)

    def close(self) -> None:
        super().close()
        self._state = ([], [])
        self._inputs = []
        self._compiled = {}


class KerasTensorFlowCase(KerasCase):
    backend = "tensorflow"

    def __init__(self, keras: Any, model: Any, bound: dict[str, Any], matched: str, request: BuildRequest) -> None:
        import tensorflow as tf

        super().__init__(keras, model, bound, matched, request)
        self._tf = tf
        self._gpu = request.device == "gpu"
        self._inputs = [tf.constant(a) for a in self._arrays]
        self._y = tf.constant(self._labels)

    def _x(self, inputs: Any) -> Any:
        return inputs[0] if len(inputs) == 1 else list(inputs)

    def _forward(self, *inputs: Any) -> Any:
        return self._model(self._x(inputs), training=False)

    def _step(self, training: bool) -> Callable[..., Any]:
        tf = self._tf

        def step(labels: Any, *inputs: Any) -> tuple[Any, list[Any]]:
            with tf.GradientTape() as tape:
                output = self._model(self._x(inputs), training=training)
                loss = loss_of(self._keras, labels, output)
            return loss, tape.gradient(loss, self._trainable)

        return step

    def _forward_call(self) -> Callable[[], Any]:
        concrete = self._tf.function(self._forward).get_concrete_function(*self._inputs)
        inputs = self._inputs
        return lambda: concrete(*inputs)

    def _gradient_call(self, training: bool) -> Callable[[], Any]:
        concrete = self._tf.function(self._step(training)).get_concrete_function(self._y, *self._inputs)
        y, inputs = self._y, self._inputs
        return lambda: concrete(y, *inputs)[1]

    def _loss_and_gradients(self) -> tuple[Any, list[Any]]:
        loss, grads = self._tf.function(self._step(False))(self._y, *self._inputs)
        return loss.numpy(), [self._tf.convert_to_tensor(g) for g in grads]

    def _to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value)

    def sync(self, handle: Any) -> None:
        """A CPU call returns when its outputs are computed; GPU streams are waited for."""
        if self._gpu:
            self._tf.test.experimental.sync_devices()

    def close(self) -> None:
        super().close()
        self._inputs = []


class KerasTorchCase(KerasCase):
    backend = "torch"

    def __init__(self, keras: Any, model: Any, bound: dict[str, Any], matched: str, request: BuildRequest) -> None:
        import torch

        super().__init__(keras, model, bound, matched, request)
        self._torch = torch
        self._gpu = request.device == "gpu"
        device = keras.src.backend.torch.core.get_device()
        self._inputs = [torch.from_numpy(a).to(device) for a in self._arrays]
        self._y = torch.from_numpy(self._labels.astype(np.int64)).to(device)
        self._params = [v.value for v in self._trainable]

    def _x(self) -> Any:
        return self._inputs[0] if len(self._inputs) == 1 else self._inputs

    def _forward_call(self) -> Callable[[], Any]:
        torch, model = self._torch, self._model

        def forward() -> Any:
            with torch.inference_mode():
                return model(self._x(), training=False)

        return forward

    def _loss_grads(self, training: bool) -> tuple[Any, Any]:
        output = self._model(self._x(), training=training)
        loss = loss_of(self._keras, self._y, output)
        return loss, self._torch.autograd.grad(loss, self._params)

    def _gradient_call(self, training: bool) -> Callable[[], Any]:
        return lambda: self._loss_grads(training)[1]

    def _loss_and_gradients(self) -> tuple[Any, list[Any]]:
        loss, grads = self._loss_grads(False)
        return loss.detach(), list(grads)

    def _to_numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value.detach().cpu().numpy())

    def sync(self, handle: Any) -> None:
        """CPU work is done when the call returns; a GPU's stream is waited for."""
        if self._gpu:
            self._torch.cuda.synchronize()

    def close(self) -> None:
        super().close()
        self._inputs, self._params = [], []
