"""Framework-free stand-ins for ``dlbench verify`` tests.

``NumpyAdapter`` is a real adapter whose model is the NumPy reference evaluated in float32 (weights and batch
rounded to float32, results rounded back), so it agrees with the float64 reference the way a framework does.
Its bugs are injected where a real adapter's would be: in how canonical weights are loaded (and gradients
mapped back). The model then really computes a different function; the reported numbers are not edited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from dlbench.frameworks.base import (
    Adapter,
    BuildRequest,
    BuiltCase,
    CaseUnavailable,
    Evaluation,
    RuntimeInfo,
)
from dlbench.verify.reference import reference_evaluate

Weights = dict[str, np.ndarray]
WeightMap = Callable[[Weights], Weights]


def swap_lstm_gates(first: int, second: int, hidden: int = 128) -> WeightMap:
    """A bug of an LSTM port: gate blocks ``first`` and ``second`` (0=i, 1=f, 2=g, 3=o) exchanged. It is its
    own inverse, so the same map serves weights in and gradients out, as in a consistently wrong adapter."""

    def swap(weights: Weights) -> Weights:
        out = dict(weights)
        for name in ("lstm.input_kernel", "lstm.recurrent_kernel", "lstm.bias"):
            if name not in out:
                continue
            value = np.array(out[name], copy=True)
            a = slice(first * hidden, (first + 1) * hidden)
            b = slice(second * hidden, (second + 1) * hidden)
            value[..., a], value[..., b] = out[name][..., b], out[name][..., a]
            out[name] = value
        return out

    return swap


def permute_lstm_bias_gates(order: tuple[int, int, int, int], hidden: int = 128) -> tuple[WeightMap, WeightMap]:
    """A bias bug of an LSTM port: the ``[4H]`` bias is loaded with its gate blocks in the order ``order`` (block
    ``k`` of the loaded bias is canonical block ``order[k]``; 0=i, 1=f, 2=g, 3=o), the kernels correctly, and the
    bias gradient is put back with the inverse permutation. Consistent both ways, so with all-zero biases the
    model computes exactly the canonical function."""
    inverse = tuple(int(k) for k in np.argsort(order))

    def blocks(value: np.ndarray, arrangement: tuple[int, ...]) -> np.ndarray:
        parts = np.asarray(value).reshape(4, hidden)
        return parts[list(arrangement)].reshape(4 * hidden)

    def weights_in(weights: Weights) -> Weights:
        out = dict(weights)
        if "lstm.bias" in out:
            out["lstm.bias"] = blocks(out["lstm.bias"], order)
        return out

    def gradients_out(grads: Weights) -> Weights:
        out = dict(grads)
        if "lstm.bias" in out:
            out["lstm.bias"] = blocks(out["lstm.bias"], inverse)
        return out

    return weights_in, gradients_out


def flatten_permutation(height: int, width: int, channels: int) -> np.ndarray:
    """``perm[hwc_index] = chw_index``: where a channels-first flatten puts the feature at (h, w, c)."""
    h, w, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(channels), indexing="ij")
    return (c * height * width + h * width + w).ravel()


def forget_flatten_permutation(
    kernel: str, height: int, width: int, channels: int
) -> tuple[WeightMap, WeightMap]:
    """A channels-first adapter that copies the canonical (H, W, C)-ordered rows of ``kernel`` unpermuted.
    In canonical terms it computes with rows ``W[perm]`` and reports gradient rows ``G[inverse perm]``."""
    perm = flatten_permutation(height, width, channels)
    inverse = np.argsort(perm)

    def weights_in(weights: Weights) -> Weights:
        return {**weights, kernel: np.asarray(weights[kernel])[perm]} if kernel in weights else dict(weights)

    def gradients_out(grads: Weights) -> Weights:
        return {**grads, kernel: np.asarray(grads[kernel])[inverse]} if kernel in grads else dict(grads)

    return weights_in, gradients_out


def identity(weights: Weights) -> Weights:
    return dict(weights)


class DelegatingCase(BuiltCase):
    """A real built case seen through a wrapper: everything goes to ``inner``; a test overrides the one
    method it makes wrong (a misloaded gradient, a wrong function during evaluation)."""

    def __init__(self, inner: BuiltCase) -> None:
        self.inner = inner

    @property
    def trainable_params(self) -> int:
        return self.inner.trainable_params

    def prepare(self, pass_: str) -> Callable[[], Any]:
        return self.inner.prepare(pass_)

    def sync(self, handle: Any) -> None:
        self.inner.sync(handle)

    def evaluate(self) -> Evaluation:
        return self.inner.evaluate()


class NumpyCase(BuiltCase):
    def __init__(
        self, request: BuildRequest, weights_in: WeightMap, gradients_out: WeightMap, params_delta: int
    ) -> None:
        self.request = request
        self.weights = {
            k: np.asarray(v, dtype=np.float32) for k, v in weights_in(dict(request.weights)).items()
        }
        self.gradients_out = gradients_out
        self.params_delta = params_delta
        self.closed = False

    @property
    def trainable_params(self) -> int:
        return self.request.workload.trainable_params(self.request.phase) + self.params_delta

    def prepare(self, pass_: str) -> Callable[[], Any]:
        return lambda: None

    def sync(self, handle: Any) -> None:
        return None

    def evaluate(self) -> Evaluation:
        r = self.request
        ref = reference_evaluate(r.workload.name, r.phase, r.batch, self.weights, calibrate=False).evaluation
        grads = {k: v.astype(np.float32) for k, v in ref.gradients.items()}
        return Evaluation(
            ref.output.astype(np.float32), float(np.float32(ref.loss)), self.gradients_out(grads)
        )

    def framework_flops(self, pass_: str) -> float | None:
        return 123.0 if pass_ == "forward" else None

    def close(self) -> None:
        self.closed = True


class NumpyAdapter(Adapter):
    """An in-process adapter built on the reference. ``weights_in`` / ``gradients_out`` inject a layout bug,
    ``params_delta`` a wrong parameter count, ``fail`` a failure at "initialize", "build" or "evaluate", and
    ``unavailable`` a set of variants that raise CaseUnavailable; ``variants`` the variant names it accepts."""

    name: ClassVar[str] = "numpy"
    display_name: ClassVar[str] = "NumPy (test)"
    module: ClassVar[str] = "numpy"
    distributions: ClassVar[tuple[str, ...]] = ("numpy",)
    variants: ClassVar[tuple[str, ...]] = ("plain", "other")
    default_variant: ClassVar[str] = "plain"

    def __init__(
        self,
        name: str = "numpy",
        weights_in: WeightMap = identity,
        gradients_out: WeightMap = identity,
        params_delta: int = 0,
        fail: str = "",
        unavailable: tuple[str, ...] = (),
        variants: tuple[str, ...] = ("plain", "other"),
    ) -> None:
        self.name = name  # type: ignore[misc]
        self.variants = variants  # type: ignore[misc]
        self.weights_in = weights_in
        self.gradients_out = gradients_out
        self.params_delta = params_delta
        self.fail = fail
        self.unavailable = unavailable
        self.built: list[NumpyCase] = []

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        if self.fail == "initialize":
            raise ImportError("No module named 'numpyframework'\nsecond line that must not be shown")
        return RuntimeInfo(self.name, "1.0", threads, ("cpu",))

    def _build(self, request: BuildRequest) -> BuiltCase:
        if request.dropout:
            raise AssertionError("verify must build with dropout off")
        if request.variant in self.unavailable:
            raise CaseUnavailable(f"variant {request.variant} is not supported here")
        if self.fail == "build":
            raise RuntimeError("cannot build this network")
        case = NumpyCase(request, self.weights_in, self.gradients_out, self.params_delta)
        if self.fail == "evaluate":
            case.evaluate = _raise  # type: ignore[method-assign]
        self.built.append(case)
        return case


def _raise() -> Evaluation:
    raise ValueError("evaluation exploded")


def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of ``f`` at ``x``, every coordinate (the reference's backprop is checked
    against it)."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + eps
        up = f(x)
        x[index] = old - eps
        down = f(x)
        x[index] = old
        grad[index] = (up - down) / (2 * eps)
    return grad
