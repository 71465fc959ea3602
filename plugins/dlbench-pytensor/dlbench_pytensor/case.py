"""The built PyTensor case: a canonical network's graphs over shared variables (parameters and batch, placed
once in ``build``), the functions compiled from them, and the traits read from the compiled graphs.

Timing fairness:

* Parameters, inputs and labels are shared variables, so a compiled function takes no argument and a sample
  times the computation alone, with no argument conversion. Its outputs are returned with ``borrow=True``
  (PyTensor may then hand back its own output buffers instead of copies).
* ``prepare`` compiles (graph rewrites, C code generation and compilation or a cache hit, Numba or XLA
  compilation) afresh each time, so that ``first_call_ms`` holds the whole cost of a first call.
* The forward pass is inference (no dropout). The gradient pass is ``pytensor.grad`` of the loss w.r.t. the
  phase's trainable parameters only (the frozen encoders of the autoencoder's pretraining phases are shared
  variables nobody differentiates) and returns the gradients, no update. Dropout draws from a
  ``RandomStream`` whose generator is updated in every call: a fresh mask each time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytensor
from pytensor.tensor.random.utils import RandomStream

from dlbench.cases.spec import NATIVE_CONV
from dlbench.frameworks.base import BuildRequest, BuiltCase, Evaluation
from dlbench.workloads import check_pass
from dlbench_pytensor.convolution import NATIVE_BACKEND
from dlbench_pytensor.modes import CompileMode
from dlbench_pytensor.networks import Network

DROPOUT_SEED = 0
_DOT_OPS = ("Dot", "Gemm", "Gemv", "Ger", "BatchedDot", "Blockwise", "Dot22", "Dot22Scalar", "MatMul")


def _op_names(function: Any) -> list[str]:
    """Names of the ops of a compiled function's graph, with those of Scan's inner graphs, in order."""
    names: list[str] = []
    for node in function.maker.fgraph.toposort():
        names.append(str(node.op))
        inner = getattr(node.op, "fgraph", None)
        if inner is not None:
            names.extend(str(n.op) for n in inner.toposort())
    return names


def dot_backend(function: Any) -> str:
    """The distinct matrix-product ops of a compiled graph (``Dot22``, ``Gemm{inplace}``, ``Blockwise{...}``...),
    joined by ``+``: what PyTensor rewrote the algorithm's products into. ``none`` if there is none."""
    seen = sorted({name for name in _op_names(function) if name.split("{")[0].split("(")[0] in _DOT_OPS})
    return "+".join(seen) or "none"


def _gradients(loss: Any, wrt: list[Any]) -> list[Any]:
    """``pytensor.grad`` of ``loss`` w.r.t. each of ``wrt``, as a list (its return type is a union)."""
    grads = pytensor.grad(loss, wrt)
    assert isinstance(grads, list)
    return grads


def _shared(value: np.ndarray, name: str) -> Any:
    """A shared variable with its static shape: the rewrites then fold every shape to a constant, which the
    JAX backend needs (XLA compiles for concrete shapes) and which spares the others shape arithmetic."""
    return pytensor.shared(value, name=name, shape=value.shape)


class PyTensorCase(BuiltCase):
    """A canonical network with its parameters and batch in PyTensor shared variables."""

    def __init__(self, request: BuildRequest, network: Network, mode: CompileMode) -> None:
        self._network = network
        self._mode = mode
        self._conv = request.conv
        self._workload = request.workload
        phase = request.workload.phase(request.phase)
        self._trainable_names = phase.trainable
        self._shared = {name: _shared(np.asarray(request.weights[name], dtype=np.float32), name)
                        for name in phase.reads}
        batch = request.batch
        x = np.asarray(batch.x, dtype=np.int32 if batch.mask is not None else np.float32)
        host_inputs = (x,) if batch.mask is None else (x, np.asarray(batch.mask, dtype=np.float32))
        self._inputs = tuple(_shared(a, f"input{i}") for i, a in enumerate(host_inputs))
        self._labels = _shared(np.asarray(batch.y, dtype=np.int32), "labels")
        self._stream = RandomStream(DROPOUT_SEED) if request.dropout and network.uses_dropout else None
        self._compiled: dict[str, Any] = {}

    # ----- graphs -----
    def _output(self) -> Any:
        return self._network.output(self._shared, self._inputs, None, self._conv)

    def _loss(self, stream: RandomStream | None) -> Any:
        return self._network.objective(self._shared, self._inputs, self._labels, stream, self._conv)

    def _wrt(self) -> list[Any]:
        """The variables the gradient pass differentiates: the trainable parameters (and a layer benchmark's
        input, whose gradient is part of the timed pass but not reported)."""
        wrt = [self._shared[name] for name in self._trainable_names]
        return [*wrt, self._inputs[0]] if self._network.input_gradient else wrt

    def _outputs(self, pass_: str) -> list[Any]:
        if pass_ == "forward":
            return [self._output()]
        return _gradients(self._loss(self._stream), self._wrt())

    def _compile(self, pass_: str, fresh: bool = False) -> Any:
        if fresh or pass_ not in self._compiled:
            outs = [pytensor.Out(v, borrow=True) for v in self._outputs(pass_)]
            self._compiled[pass_] = pytensor.function([], outs, mode=self._mode.mode())  # type: ignore[arg-type]
        return self._compiled[pass_]

    # ----- BuiltCase -----
    @property
    def trainable_params(self) -> int:
        return sum(int(self._shared[name].get_value(borrow=True).size) for name in self._trainable_names)

    def dtypes(self) -> dict[str, str]:
        """From the symbolic forward graph: the dtype of the first product's (convolution or matmul) input and
        the dtype of the output. Nothing is compiled."""
        from pytensor.graph.traversal import io_toposort

        output = self._output()
        seen = {"output": str(output.type.dtype)}
        for node in io_toposort([], [output]):
            name = type(node.op).__name__
            if name in ("Dot", "Blockwise", "Convolve2d", "MatMul") and node.inputs:
                seen["activation"] = str(getattr(node.inputs[0].type, "dtype", ""))
                break
        return seen

    def traits(self) -> dict[str, str]:
        """The compile mode (the variant's linker and rewrites); for conv nets the layout (NHWC, the canonical
        one: the graph works on it directly), the algorithm and ``conv_backend``: for ``native`` SciPy's 2-D
        convolution per map, otherwise the matrix-product ops of the compiled gradient graph; for the LSTM
        ``unfused`` (a ``scan`` loop of per-step ops)."""
        traits = {"compile_mode": self._mode.label}
        if self._workload.has_convolutions:
            traits["layout"] = "NHWC"
            traits["conv"] = self._conv
            traits["conv_backend"] = (NATIVE_BACKEND if self._conv == NATIVE_CONV
                                      else f"pytensor:{dot_backend(self._compile('gradient'))}")
        if self._workload.name == "lstm":
            traits["recurrence"] = "unfused"
        return traits

    def prepare(self, pass_: str) -> Callable[[], Any]:
        check_pass(pass_)
        return self._compile(pass_, fresh=True)  # type: ignore[no-any-return]

    def sync(self, handle: Any) -> None:
        """C and Numba return NumPy arrays (the work is done); the JAX backend may return JAX arrays that are
        still being computed."""
        for value in handle if isinstance(handle, (list, tuple)) else (handle,):
            wait = getattr(value, "block_until_ready", None)
            if wait is not None:
                wait()

    def evaluate(self) -> Evaluation:
        """Dropout off whatever the request said, so that every framework computes the same function."""
        loss = self._loss(None)
        grads = _gradients(loss, self._wrt())[: len(self._trainable_names)]
        outs = [self._output(), loss, *grads]
        values = pytensor.function([], outs, mode=self._mode.mode())()
        return Evaluation(
            output=np.asarray(values[0], dtype=np.float32),
            loss=float(values[1]),
            gradients={name: np.asarray(g) for name, g in zip(self._trainable_names, values[2:], strict=True)},
        )

    def close(self) -> None:
        """Drop the compiled functions and the shared variables (their NumPy buffers go with them)."""
        self._compiled.clear()
        self._shared, self._inputs = {}, ()
