"""Error metrics between two evaluations of the same workload phase.

Relative errors are *normwise* (max-norm): ``max|a - b| / max(max|a|, max|b|)``. An elementwise relative
error would explode on the many entries that are legitimately close to zero (a ReLU network's gradients,
the unused rows of an embedding gradient), while float32 rounding is relative to the tensor's scale. A real
layout bug (swapped gates, a wrong flatten order, a missing bias) moves the whole tensor and gives relative
errors of order 1e-1..1, several orders of magnitude above the float32 tolerances.

Where the reference supplies an elementwise float32 allowance (see :mod:`dlbench.verify.reference`), it is
subtracted from the absolute difference before the tolerance judges; the raw error is still reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dlbench.frameworks.base import Evaluation
from dlbench.verify.tolerances import Tolerance

FAMILIES: tuple[str, ...] = ("output", "loss", "gradient")


@dataclass(frozen=True)
class TensorError:
    """How far one tensor of implementation ``a`` is from the same tensor of ``b``.

    ``max_rel`` is the raw normwise error; ``excess_rel`` is what remains of it after the reference's
    elementwise float32 allowance (near-cancelling sums, near-ties: see :mod:`dlbench.verify.reference`) is
    subtracted, and is what the tolerance judges. Without an allowance the two are equal."""

    tensor: str  # "output", "loss" or "<parameter> gradient", e.g. "conv2.kernel gradient"
    family: str  # one of FAMILIES
    max_abs: float
    max_rel: float
    tolerance: float  # the allowed excess_rel
    excess_rel: float | None = None  # None: no allowance applied, same as max_rel
    problem: str = ""  # set when the tensors cannot be compared at all (missing, shape, non-finite)

    @property
    def judged(self) -> float:
        return self.max_rel if self.excess_rel is None else self.excess_rel

    @property
    def ok(self) -> bool:
        return not self.problem and self.judged <= self.tolerance

    @property
    def explained(self) -> bool:
        """Over the tolerance as such, but within the float32 allowance."""
        return self.ok and self.max_rel > self.tolerance

    @property
    def badness(self) -> float:
        """How many times over its budget the tensor is (<= 1 passes); comparison problems are infinite."""
        if self.problem:
            return float(np.inf)
        return self.judged / self.tolerance if self.tolerance > 0 else float(np.inf)

    def describe(self) -> str:
        """``lstm.bias gradient (max rel 3.1e-01 > 3.0e-05)``: what a failure line says."""
        if self.problem:
            return f"{self.tensor} ({self.problem})"
        if self.excess_rel is not None and self.excess_rel < 0.5 * self.max_rel:
            return (
                f"{self.tensor} (max rel {self.max_rel:.1e}, "
                f"{self.excess_rel:.1e} beyond the float32 allowance "
                f"> {self.tolerance:.1e})"
            )
        return f"{self.tensor} (max rel {self.max_rel:.1e} > {self.tolerance:.1e})"


@dataclass(frozen=True)
class FamilySummary:
    """The largest errors of one tensor family and the tensors that exceed the tolerance."""

    family: str
    max_abs: float
    max_rel: float
    worst: str  # the tensor furthest over (or closest to) its tolerance
    tolerance: float
    failures: tuple[TensorError, ...]
    explained: int  # tensors over the tolerance but within the float32 allowance

    @property
    def ok(self) -> bool:
        return not self.failures


def tensor_error(
    tensor: str,
    family: str,
    a: np.ndarray,
    b: np.ndarray,
    tolerance: float,
    allowance: np.ndarray | None = None,
) -> TensorError:
    """Compare two tensors in float64. Shapes must match exactly: a transposed kernel is a layout bug.
    ``allowance`` (broadcastable to the tensors) is subtracted elementwise from the absolute difference."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape:
        problem = f"shape {tuple(a64.shape)} vs {tuple(b64.shape)}"
        return TensorError(tensor, family, np.inf, np.inf, tolerance, problem=problem)
    if not (np.isfinite(a64).all() and np.isfinite(b64).all()):
        return TensorError(tensor, family, np.inf, np.inf, tolerance, problem="non-finite values")
    if a64.size == 0:
        return TensorError(tensor, family, 0.0, 0.0, tolerance)
    diff = np.abs(a64 - b64)
    max_abs = float(diff.max())
    scale = max(float(np.abs(a64).max()), float(np.abs(b64).max()))
    max_rel = max_abs / scale if scale > 0 else 0.0
    excess = None
    if allowance is not None:
        left = float(np.maximum(diff - allowance, 0.0).max())
        excess = left / scale if scale > 0 else 0.0
    return TensorError(tensor, family, max_abs, max_rel, tolerance, excess)


def gradient_label(name: str) -> str:
    return f"{name} gradient"


def compare_evaluations(
    a: Evaluation,
    b: Evaluation,
    tolerance: Tolerance,
    allowance: Mapping[str, np.ndarray] | None = None,
    gradients: bool = True,
) -> list[TensorError]:
    """Every tensor of ``a`` against ``b``: output, loss and (if ``gradients``) each parameter's gradient,
    in ``b``'s order. A gradient present on one side only is an error: the trainable sets differ.
    ``allowance`` maps "output", "loss" and parameter names to elementwise float32 allowances."""
    allow = allowance or {}
    errors = [
        tensor_error("output", "output", a.output, b.output, tolerance.output, allow.get("output")),
        tensor_error(
            "loss", "loss", np.asarray(a.loss), np.asarray(b.loss), tolerance.loss, allow.get("loss")
        ),
    ]
    if not gradients:
        return errors
    names = list(b.gradients) + [n for n in a.gradients if n not in b.gradients]
    for name in names:
        label = gradient_label(name)
        if name in a.gradients and name in b.gradients:
            error = tensor_error(
                label, "gradient", a.gradients[name], b.gradients[name], tolerance.gradient, allow.get(name)
            )
            errors.append(error)
            continue
        side = "first" if name not in a.gradients else "second"
        problem = f"missing in the {side} implementation"
        errors.append(TensorError(label, "gradient", np.inf, np.inf, tolerance.gradient, problem=problem))
    return errors


def summarize_families(errors: Iterable[TensorError]) -> dict[str, FamilySummary]:
    """Per family: the largest absolute and relative error, the worst tensor, and every failure."""
    by_family: dict[str, list[TensorError]] = {}
    for error in errors:
        by_family.setdefault(error.family, []).append(error)
    summaries = {}
    for family in FAMILIES:
        members = by_family.get(family)
        if not members:
            continue
        summaries[family] = FamilySummary(
            family=family,
            max_abs=max(e.max_abs for e in members),
            max_rel=max(e.max_rel for e in members),
            worst=max(members, key=lambda e: e.badness).tensor,
            tolerance=max(e.tolerance for e in members),
            failures=tuple(failures(members)),
            explained=sum(e.explained for e in members),
        )
    return summaries


def failures(errors: Sequence[TensorError]) -> list[TensorError]:
    """The failing tensors, worst first."""
    return sorted((e for e in errors if not e.ok), key=lambda e: e.badness, reverse=True)
