"""The built JAX case: a canonical network with its parameters, batch and dropout key on one device, the pure
functions that get compiled (forward, loss, gradient), and the queries on their compiled executables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dlbench.cases.precision import get_precision
from dlbench.frameworks.base import BuildRequest, BuiltCase, Evaluation
from dlbench.frameworks.jax.compiled import _flops_from_cost, _has_float_loop, case_traits, conv_backend
from dlbench.frameworks.jax.layers import Array, Inputs, Params
from dlbench.frameworks.jax.networks import POOLS, Network
from dlbench.frameworks.jax.precision import MATMUL_PRECISIONS, traced_dtypes
from dlbench.workloads import check_pass

# conv_backend of each (workload, phase, variant, precision, device, batch size, algorithm) in this worker:
# XLA picks the same libraries for the same program, and its flags are fixed for the process.
_CONV_BACKENDS: dict[tuple[str, ...], str] = {}


class JaxCase(BuiltCase):
    """A canonical network with its parameters, batch and dropout key resident on one JAX device."""

    def __init__(self, request: BuildRequest, network: Network, device: Any) -> None:
        import jax

        precision = get_precision(request.precision)
        self._compute = precision.compute  # dtype the float32 master parameters are cast to in each call
        self._loss_scale = precision.loss_scale
        self._matmul_precision = MATMUL_PRECISIONS.get(request.precision, "default")
        self._network = network
        self._pool = POOLS[request.variant]
        self._device = device
        self._traits = case_traits(request.workload.name)
        self._conv = request.conv  # the convolution algorithm (networks without convolutions: "native")
        self._has_convolutions = request.workload.has_convolutions
        self._is_layer = request.workload.is_layer
        self._case_key = (request.workload.name, request.phase, request.variant, request.precision,
                          str(device), str(request.batch.x.shape[0]))
        phase = request.workload.phase(request.phase)
        self._trainable_names = phase.trainable
        trainable = {name: np.asarray(request.weights[name], dtype=np.float32) for name in phase.trainable}
        frozen = {name: np.asarray(request.weights[name], dtype=np.float32) for name in phase.frozen}
        self._trainable: dict[str, Array] = jax.device_put(trainable, device)
        self._frozen: dict[str, Array] = jax.device_put(frozen, device)
        batch = request.batch
        host_inputs: tuple[np.ndarray, ...] = (batch.x,) if batch.mask is None else (batch.x, batch.mask)
        self._inputs: Inputs = tuple(jax.device_put(a, device) for a in host_inputs)
        self._labels: Array = jax.device_put(np.asarray(batch.y, dtype=np.int32), device)
        wants_dropout = request.dropout and network.uses_dropout
        self._key: Array | None = jax.device_put(jax.random.key(0), device) if wants_dropout else None
        self._compiled: dict[str, Any] = {}

    # ----- the pure functions that get compiled -----
    def _cast(self, params: Params, inputs: Inputs) -> tuple[Params, Inputs]:
        """Mixed precision: the float32 master parameters and the float inputs, cast to the compute dtype
        inside the compiled function (so gradients flow back to float32), except the network's
        ``float32_params``. Integer tokens and the sequence workloads' float32 mask stay as they are (the
        mask makes the pooled sum over time float32)."""
        if self._compute == "float32":
            return params, inputs
        keep = self._network.float32_params
        cast = {name: value if keep and name.endswith(keep) else value.astype(self._compute)
                for name, value in params.items()}
        first = inputs[0] if inputs[0].dtype.kind != "f" else inputs[0].astype(self._compute)
        return cast, (first, *inputs[1:])

    def _forward(self, trainable: Params, frozen: Params, inputs: Inputs) -> Array:
        params, inputs = self._cast({**trainable, **frozen}, inputs)
        return self._network.output(params, inputs, None, self._pool)

    def _loss(
        self, trainable: Params, frozen: Params, inputs: Inputs, labels: Array, key: Array | None
    ) -> Array:
        params, inputs = self._cast({**trainable, **frozen}, inputs)
        return self._network.objective(params, inputs, labels, key, self._pool)

    def _gradient(
        self, trainable: Params, frozen: Params, inputs: Inputs, labels: Array, key: Array | None
    ) -> Any:
        """``jax.grad`` of the loss; with a loss scale (fp16) the scaled loss is differentiated and the
        float32 gradients are unscaled in the same compiled function (a static scale, as in jmp). A layer
        benchmark differentiates w.r.t. its input too (``Network.input_gradient``): the result is then the
        pair (parameter gradients, input gradients), see :meth:`_parameter_gradients`."""
        import jax

        argnums: int | tuple[int, ...] = (0, 2) if self._network.input_gradient else 0
        if self._loss_scale == 1.0:
            return jax.grad(self._loss, argnums=argnums)(trainable, frozen, inputs, labels, key)
        scale = self._loss_scale

        def scaled(*args: Any) -> Array:
            return self._loss(*args) * scale

        grads = jax.grad(scaled, argnums=argnums)(trainable, frozen, inputs, labels, key)
        return jax.tree_util.tree_map(lambda g: g * (1.0 / scale), grads)

    def _parameter_gradients(self, grads: Any) -> Any:
        """The trainable parameters' part of what :meth:`_gradient` returns."""
        return grads[0] if self._network.input_gradient else grads

    def _pass(self, pass_: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        if pass_ == "forward":
            return self._forward, (self._trainable, self._frozen, self._inputs)
        if pass_ == "gradient":
            args = (self._trainable, self._frozen, self._inputs, self._labels, self._key)
            return self._gradient, args
        raise AssertionError(pass_)  # unreachable: prepare checked the name

    def _compile(self, pass_: str, fresh: bool = False) -> Any:
        """Ahead-of-time compiled executable of ``pass_``, kept for the memory and FLOP queries."""
        import jax

        if fresh or pass_ not in self._compiled:
            fn, args = self._pass(pass_)
            with jax.default_matmul_precision(self._matmul_precision):
                self._compiled[pass_] = jax.jit(fn).lower(*args).compile()
        return self._compiled[pass_]

    def dtypes(self) -> dict[str, str]:
        """From the traced forward program itself: the operand dtype of its first convolution or matmul
        (what the arithmetic runs in; its float32 accumulator is rounded back right after) and the dtype of
        the output. Tracing only, nothing is compiled or run."""
        import jax

        closed = jax.make_jaxpr(self._forward)(self._trainable, self._frozen, self._inputs)
        seen = traced_dtypes(closed, self._matmul_precision)
        if "activation" not in seen and self._is_layer:
            # a layer benchmark by FFT has no real-valued contraction: its output is the activation
            seen["activation"] = seen["output"]
        return seen

    def lowering_problem(self) -> str | None:
        """Why XLA refuses the forward program for this backend (None if it lowers). A throwaway lowering,
        nothing compiled: e.g. ``jax.nn.dot_product_attention`` asks float16 operands for the
        ``F16_F16_F32`` dot algorithm, which XLA's CPU backend rejects."""
        import jax

        try:
            with jax.default_matmul_precision(self._matmul_precision):
                jax.jit(self._forward).lower(self._trainable, self._frozen, self._inputs)
        except ValueError as exc:
            return str(exc).splitlines()[0]
        return None

    # ----- BuiltCase -----
    def traits(self) -> dict[str, str]:
        """The static traits (:func:`.compiled.case_traits`), and for a case with convolutions ``conv`` (the
        algorithm) and ``conv_backend``: which library the compiled gradient program (the forward
        convolutions and both backward ones) hands them to, read from its HLO (:func:`.compiled.conv_backend`)."""
        traits = dict(self._traits)
        if self._has_convolutions:
            traits["conv"] = self._conv
            key = (*self._case_key, self._conv)  # a forward and a gradient case of one configuration share it
            if key not in _CONV_BACKENDS:
                _CONV_BACKENDS[key] = conv_backend(self._compile("gradient").as_text() or "", self._conv)
            traits["conv_backend"] = _CONV_BACKENDS[key]
        return traits

    @property
    def trainable_params(self) -> int:
        return sum(int(np.prod(a.shape)) for a in self._trainable.values())

    def prepare(self, pass_: str) -> Callable[[], Any]:
        """Trace and compile here, always (even if a memory or FLOP query compiled the pass before), so
        that ``first_call_ms`` holds the full cost of a first call whatever order the runner uses."""
        check_pass(pass_)
        compiled = self._compile(pass_, fresh=True)
        _, args = self._pass(pass_)

        def run() -> Any:
            return compiled(*args)

        return run

    def sync(self, handle: Any) -> None:
        import jax

        jax.block_until_ready(handle)

    def evaluate(self) -> Evaluation:
        """Dropout off whatever the request said, so that every framework computes the same function."""
        import jax

        output = self._compile("forward")(self._trainable, self._frozen, self._inputs)
        args = (self._trainable, self._frozen, self._inputs, self._labels, None)
        with jax.default_matmul_precision(self._matmul_precision):
            loss = jax.jit(self._loss)(*args)
            if self._key is None:  # no dropout key: the timed gradient's executable takes exactly these arguments
                grads = self._compile("gradient")(*args)
            else:
                grads = jax.jit(self._gradient)(*args)  # the timed gradient's recipe, loss scale included
        host_grads = jax.device_get(self._parameter_gradients(grads))
        return Evaluation(
            output=np.asarray(jax.device_get(output), dtype=np.float32),
            loss=float(loss),
            gradients={name: np.asarray(host_grads[name]) for name in self._trainable_names},
        )

    def peak_memory_bytes(self, pass_: str) -> int | None:
        """XLA's static buffer assignment of the compiled executable, on every device: argument + output +
        temporary bytes minus aliased bytes, i.e. the device memory the pass needs while it runs.

        Not the allocator's ``peak_bytes_in_use`` on a GPU: that is a process-lifetime high-water mark that
        JAX cannot reset, so after the first large case of a worker every later, smaller case would have no
        reading of its own. The static figure is the same on every run and every device order, includes the
        live parameters and batch (the arguments), and excludes what the allocator adds (fragmentation,
        cuDNN/cuBLAS workspaces that XLA does not assign)."""
        try:
            stats = self._compile(pass_).memory_analysis()
        except Exception:  # an optional counter must never fail a case
            return None
        if stats is None:
            return None
        return int(
            stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
            - stats.alias_size_in_bytes
        )

    def framework_flops(self, pass_: str) -> float | None:
        """XLA's cost analysis of the compiled executable. None where the backend does not provide it, and
        None for a program with a loop (``lax.scan``): XLA counts a while loop's body once, not once per
        iteration (the LSTM's recurrent matmuls would be undercounted 100x), and a wrong count is worse
        than none."""
        try:
            compiled = self._compile(pass_)
            if _has_float_loop(compiled.as_text() or ""):
                return None
            return _flops_from_cost(compiled.cost_analysis())
        except Exception:  # an optional counter must never fail a case
            return None

    def close(self) -> None:
        import jax

        self._compiled.clear()
        buffers = (self._trainable, self._frozen, self._inputs, self._labels, self._key)
        for leaf in jax.tree_util.tree_leaves(buffers):
            leaf.delete()
        self._trainable, self._frozen, self._inputs, self._key = {}, {}, (), None
