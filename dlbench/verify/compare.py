"""Error metrics between two evaluations of the same workload phase.

Relative errors are *normwise* (max-norm): ``max|a - b| / max(max|a|, max|b|)``. An elementwise relative
error would explode on the many entries that are legitimately close to zero (a ReLU network's gradients,
the unused rows of an embedding gradient), while float32 rounding is relative to the tensor's scale. A real
layout bug (swapped gates, a wrong flatten order, a missing bias) moves the whole tensor and gives relative
errors of order 1e-1..1, several orders of magnitude above the float32 tolerances.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from dlbench.frameworks.base import Evaluation
from dlbench.verify.tolerances import Tolerance

FAMILIES: tuple[str, ...] = ("output", "loss", "gradient")


@dataclass(frozen=True)
class TensorError:
    """How far one tensor of implementation ``a`` is from the same tensor of ``b``."""

    tensor: str  # "output", "loss" or "<parameter> gradient", e.g. "conv2.kernel gradient"
    family: str  # one of FAMILIES
    max_abs: float
    max_rel: float
    tolerance: float  # the allowed max_rel
    problem: str = ""  # set when the tensors cannot be compared at all (missing, shape, non-finite)

    @property
    def ok(self) -> bool:
        return not self.problem and self.max_rel <= self.tolerance

    def describe(self) -> str:
        """``lstm.bias gradient (max rel 3.1e-01 > 1.0e-04)``: what a failure line says."""
        if self.problem:
            return f"{self.tensor} ({self.problem})"
        return f"{self.tensor} (max rel {self.max_rel:.1e} > {self.tolerance:.1e})"


@dataclass(frozen=True)
class FamilySummary:
    """The largest errors of one tensor family and the tensors that exceed the tolerance."""

    family: str
    max_abs: float
    max_rel: float
    worst: str  # the tensor with the largest relative error
    tolerance: float
    failures: tuple[TensorError, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


def tensor_error(tensor: str, family: str, a: np.ndarray, b: np.ndarray, tolerance: float) -> TensorError:
    """Compare two tensors in float64. Shapes must match exactly: a transposed kernel is a layout bug."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape:
        return TensorError(tensor, family, np.inf, np.inf, tolerance,
                           f"shape {tuple(a64.shape)} vs {tuple(b64.shape)}")
    if not (np.isfinite(a64).all() and np.isfinite(b64).all()):
        return TensorError(tensor, family, np.inf, np.inf, tolerance, "non-finite values")
    if a64.size == 0:
        return TensorError(tensor, family, 0.0, 0.0, tolerance)
    max_abs = float(np.abs(a64 - b64).max())
    scale = max(float(np.abs(a64).max()), float(np.abs(b64).max()))
    max_rel = max_abs / scale if scale > 0 else 0.0
    return TensorError(tensor, family, max_abs, max_rel, tolerance)


def gradient_label(name: str) -> str:
    return f"{name} gradient"


def compare_evaluations(a: Evaluation, b: Evaluation, tolerance: Tolerance, gradients: bool = True) -> list[TensorError]:
    """Every tensor of ``a`` against ``b``: output, loss and (if ``gradients``) each parameter's gradient,
    in ``b``'s order. A gradient present on one side only is an error: the trainable sets differ."""
    errors = [
        tensor_error("output", "output", a.output, b.output, tolerance.output),
        tensor_error("loss", "loss", np.asarray(a.loss), np.asarray(b.loss), tolerance.loss),
    ]
    if not gradients:
        return errors
    names = list(b.gradients) + [n for n in a.gradients if n not in b.gradients]
    for name in names:
        label = gradient_label(name)
        if name not in a.gradients or name not in b.gradients:
            side = "first" if name not in a.gradients else "second"
            errors.append(TensorError(label, "gradient", np.inf, np.inf, tolerance.gradient,
                                      f"missing in the {side} implementation"))
            continue
        errors.append(tensor_error(label, "gradient", a.gradients[name], b.gradients[name], tolerance.gradient))
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
        worst = max(members, key=_badness)
        summaries[family] = FamilySummary(
            family=family,
            max_abs=max(e.max_abs for e in members),
            max_rel=max(e.max_rel for e in members),
            worst=worst.tensor,
            tolerance=max(e.tolerance for e in members),
            failures=tuple(sorted((e for e in members if not e.ok), key=_badness, reverse=True)),
        )
    return summaries


def _badness(error: TensorError) -> float:
    """Order by how far over its tolerance a tensor is; comparison problems count as infinitely bad."""
    if error.problem:
        return np.inf
    return error.max_rel / error.tolerance if error.tolerance > 0 else np.inf


def failures(errors: Sequence[TensorError]) -> list[TensorError]:
    """The failing tensors, worst first."""
    return sorted((e for e in errors if not e.ok), key=_badness, reverse=True)
