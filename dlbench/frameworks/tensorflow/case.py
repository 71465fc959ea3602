"""The built TensorFlow case: one canonical network on TF variables with its batch on the device, its
passes traced into ConcreteFunctions (or run eagerly) once and reused."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlbench.cases.spec import NATIVE_CONV
from dlbench.frameworks.base import BuiltCase, Evaluation
from dlbench.frameworks.tensorflow.bindings import canonical_gradients
from dlbench.frameworks.tensorflow.graph import case_traits, native_conv_backend
from dlbench.frameworks.tensorflow.networks import _Lstm, _Network
from dlbench.frameworks.tensorflow.precision import _unscale, tf_float32, traced_dtypes
from dlbench.frameworks.tensorflow.runtime import Feeds, Tensor, _Runtime
from dlbench.workloads import PASSES, check_pass


@dataclass
class _Compiled:
    """The callables of one built case, traced once per pass and reused by later ``prepare`` calls."""

    passes: dict[str, Callable[..., Any]] = field(default_factory=dict)
    graphs: dict[str, Any] = field(default_factory=dict)  # pass -> ConcreteFunction, for FLOP counting


class TensorFlowCase(BuiltCase):
    """A canonical network built on TF variables, with its batch already on the device."""

    def __init__(
        self, runtime: _Runtime, network: _Network, feeds: Feeds, variant: str, dropout: bool,
        loss_scale: float = 1.0,
    ) -> None:
        self._rt = runtime
        self._loss_scale = loss_scale
        self._net = network
        self._feeds = feeds
        self._variant = variant
        self._dropout = dropout
        self._trainable = [network.variables[name] for name in network.trainable_names]
        self._compiled = _Compiled()
        self._memory_counter = True
        self._dtypes: dict[str, str] = {}
        self._traits: dict[str, str] = {}

    @property
    def trainable_params(self) -> int:
        return sum(int(v.shape.num_elements()) for v in self._net.variables.values() if v.trainable)

    # ----- the passes, as plain Python over TF ops -----
    def _forward(self, *feeds: Tensor) -> Tensor:
        return self._net.forward(feeds, training=False)

    def _scaled_gradient(self, feeds: Feeds, training: bool) -> tuple[Tensor, Tensor, list[Tensor]]:
        """(output, loss, gradients). With a loss scale (fp16) the tape differentiates the scaled loss and
        the float32 gradients are unscaled, as Keras' LossScaleOptimizer does (without its dynamic
        adjustment); IndexedSlices keep their sparse form."""
        tf, scale = self._rt.tf, self._loss_scale
        inputs = self._net.gradient_inputs(feeds)  # a layer benchmark's input: its gradient comes last
        with tf.GradientTape() as tape:
            for tensor in inputs:
                tape.watch(tensor)
            output, loss = self._net.objective(feeds, training=training)
            scaled = loss * scale if scale != 1.0 else loss
        grads = tape.gradient(scaled, [*self._trainable, *inputs])
        if scale != 1.0:
            grads = [_unscale(tf, g, 1.0 / scale) for g in grads]
        return output, loss, grads

    def _gradient(self, *feeds: Tensor) -> list[Tensor]:
        return self._scaled_gradient(feeds, self._dropout)[2]

    def _evaluation(self, *feeds: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        _, loss, grads = self._scaled_gradient(feeds, False)
        output = self._net.forward(feeds, training=False)  # the forward pass's output (see TorchCase.evaluate)
        params = grads[: len(self._trainable)]  # the parameters' gradients: what evaluate() reports
        return tf_float32(self._rt.tf, output), loss, [self._rt.tf.convert_to_tensor(g) for g in params]

    def _python_pass(self, pass_: str) -> Callable[..., Any]:
        passes: dict[str, Callable[..., Any]] = {
            "forward": self._forward,
            "gradient": self._gradient,
            "evaluate": self._evaluation,
        }
        return passes[pass_]

    def _trace(self, pass_: str, jit_compile: bool) -> Any:
        """Trace ``pass_`` into a ConcreteFunction for the fixed input shapes (autograph off: the code
        has no data-dependent Python control flow to convert)."""
        tf = self._rt.tf
        if pass_ not in self._compiled.graphs:
            fn = tf.function(self._python_pass(pass_), jit_compile=jit_compile, autograph=False)
            with tf.device(self._rt.device_name):
                self._compiled.graphs[pass_] = fn.get_concrete_function(*self._feeds)
        return self._compiled.graphs[pass_]

    def _callable(self, pass_: str) -> Callable[..., Any]:
        if pass_ in self._compiled.passes:
            return self._compiled.passes[pass_]
        if self._variant == "eager":
            tf, device_name, python = self._rt.tf, self._rt.device_name, self._python_pass(pass_)

            def run_eager(*feeds: Tensor) -> Any:
                with tf.device(device_name):
                    return python(*feeds)

            fn: Callable[..., Any] = run_eager
        else:
            fn = self._trace(pass_, jit_compile=self._variant == "xla")
        self._compiled.passes[pass_] = fn
        return fn

    def note_dtype(self, what: str, dtype: str) -> None:
        self._dtypes[what] = dtype

    def probe_dtypes(self) -> None:
        """Dtypes read from a throwaway trace of the forward pass (kept apart from the traces ``prepare``
        makes, so that the first call still pays its own tracing): the output's, and the output dtype of
        the graph's first convolution or matmul op. The same trace gives the traits (BuiltCase.traits): the
        convolutions' ``data_format`` as written, and whether the LSTM is cuDNN's fused RNN op (which Keras
        chooses on a GPU, inside its layer, and which a fallback would silently replace by a loop). A network
        with convolutions also reports its algorithm (``conv``) and what computes native convolutions here
        (``conv_backend``, see :func:`dlbench.frameworks.tensorflow.graph.native_conv_backend`); for an
        algorithm other than native the activation dtype is the first convolution's output dtype."""
        tf = self._rt.tf
        fn = tf.function(self._forward, autograph=False)
        with tf.device(self._rt.device_name):
            graph_fn = fn.get_concrete_function(*self._feeds)
        self._dtypes = traced_dtypes(graph_fn)
        if self._net.conv_algorithm != NATIVE_CONV and self._net.conv_dtype:
            self._dtypes["activation"] = self._net.conv_dtype  # the first convolution's output, as traced
        convolutional = bool(self._net.convolutions)
        self._traits = case_traits(graph_fn.graph, isinstance(self._net, _Lstm), convolutional)
        if convolutional:
            self._traits["conv"] = self._net.conv_algorithm
            self._traits["conv_backend"] = native_conv_backend(tf, self._rt.device_name, self._net.compute,
                                                               jit_compile=self._variant == "xla")

    # ----- BuiltCase protocol -----
    def prepare(self, pass_: str) -> Callable[[], Any]:
        check_pass(pass_)
        fn, feeds = self._callable(pass_), self._feeds
        return lambda: fn(*feeds)

    def sync(self, handle: Any) -> None:
        """GPU kernels run asynchronously on streams: wait for all of them (no copy to the host). On the
        CPU a ConcreteFunction call, and each eager op (eager execution is synchronous by default), returns
        only after its outputs are computed, so there is nothing to wait for."""
        if self._rt.device == "gpu":
            self._rt.tf.test.experimental.sync_devices()

    def evaluate(self) -> Evaluation:
        output, loss, grads = self._callable("evaluate")(*self._feeds)
        return Evaluation(
            output=np.asarray(output.numpy()),
            loss=float(loss.numpy()),
            gradients=canonical_gradients(self._net.trainable_names, grads, self._net.shapes),
        )

    def dtypes(self) -> dict[str, str]:
        return dict(self._dtypes)

    def traits(self) -> dict[str, str]:
        return dict(self._traits)

    def reset_peak_memory(self) -> None:
        if not self._memory_counter:
            return
        try:
            self._rt.tf.config.experimental.reset_memory_stats(self._rt.memory_device)
        except ValueError:  # the device's allocator keeps no statistics
            self._memory_counter = False

    def peak_memory_bytes(self, pass_: str) -> int | None:
        """Peak bytes of TF's allocator on the device since the last reset; includes the live variables
        and inputs (allocated before the reset), as TF's own counter does."""
        if not self._memory_counter:
            return None
        try:
            return int(self._rt.tf.config.experimental.get_memory_info(self._rt.memory_device)["peak"])
        except ValueError:
            return None

    def framework_flops(self, pass_: str) -> float | None:
        """FLOPs of the traced graph by TF's (v1) graph profiler. None for graphs with loops (the LSTM's
        scan body would be counted once instead of once per step) and when the profiler fails."""
        if self._net.has_loops or pass_ not in PASSES:
            return None
        tf = self._rt.tf
        profiler = tf.compat.v1.profiler
        options = profiler.ProfileOptionBuilder(profiler.ProfileOptionBuilder.float_operation())
        logger = tf.get_logger()
        level = logger.level
        logger.setLevel("ERROR")  # the v1 API logs a deprecation notice
        try:
            graph = self._trace(pass_, jit_compile=False).graph
            flops = profiler.profile(graph, options=options.with_empty_output().build()).total_float_ops
        except Exception:  # noqa: BLE001  an optional statistic must never fail the measured case
            return None
        finally:
            logger.setLevel(level)
        return float(flops) if flops else None

    def close(self) -> None:
        self._compiled = _Compiled()
        self._trainable = []
        self._net.variables.clear()
        self._feeds = ()
        gc.collect()
