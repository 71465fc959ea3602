"""Error metrics and tolerance decisions of ``dlbench verify`` on synthetic arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from dlbench.errors import DlbenchError
from dlbench.frameworks.base import Evaluation
from dlbench.verify.compare import compare_evaluations, failures, summarize_families, tensor_error
from dlbench.verify.tolerances import TOLERANCES, Tolerance, tolerance_for
from dlbench.workloads import WORKLOADS

TOL = Tolerance(output=1e-5, loss=1e-5, gradient=1e-4, why="test")


def evaluation(scale: float = 1.0, **changes: np.ndarray) -> Evaluation:
    grads = {"a.kernel": np.arange(6.0).reshape(2, 3), "a.bias": np.array([1.0, -2.0])}
    grads.update(changes)
    return Evaluation(output=np.array([[1.0, -4.0]]) * scale, loss=2.0 * scale, gradients=grads)


def test_normwise_relative_error_has_a_known_value() -> None:
    a = np.array([1.0, -4.0, 0.0])
    b = np.array([1.0, -4.0, 2e-4])
    error = tensor_error("x", "output", a, b, 1e-4)
    assert error.max_abs == pytest.approx(2e-4)
    assert error.max_rel == pytest.approx(2e-4 / 4.0)  # relative to the tensor's scale, not to the 0 entry
    assert error.ok


def test_identical_tensors_have_zero_error_even_all_zero() -> None:
    zeros = np.zeros((3, 3))
    error = tensor_error("x", "gradient", zeros, zeros, 1e-4)
    assert (error.max_abs, error.max_rel, error.ok) == (0.0, 0.0, True)


def test_shape_mismatch_and_non_finite_values_are_problems() -> None:
    transposed = tensor_error("k gradient", "gradient", np.ones((2, 3)), np.ones((3, 2)), 1.0)
    assert not transposed.ok and "shape (2, 3) vs (3, 2)" in transposed.describe()
    nan = tensor_error("out", "output", np.array([np.nan]), np.array([1.0]), 1.0)
    assert not nan.ok and "non-finite" in nan.problem


def test_allowance_is_subtracted_elementwise() -> None:
    ref = np.array([1.0, 1.0, 1.0])
    noisy = np.array([1.0, 1.0 + 1e-2, 1.0 + 1e-7])
    allowance = np.array([0.0, 2e-2, 0.0])
    error = tensor_error("t", "gradient", noisy, ref, 1e-4, allowance)
    assert error.max_rel == pytest.approx(1e-2 / 1.01)  # still reported raw (scale: the larger max)
    assert error.excess_rel == pytest.approx(1e-7 / 1.01, rel=1e-3)
    assert error.ok and error.explained
    # The allowance covers only the element it was computed for: the same error elsewhere fails.
    moved = tensor_error("t", "gradient", np.array([1.0 + 1e-2, 1.0, 1.0]), ref, 1e-4, allowance)
    assert not moved.ok and moved.describe() == "t (max rel 9.9e-03 > 1.0e-04)"
    partly = tensor_error("t", "gradient", noisy, ref, 1e-4, np.array([0.0, 9e-3, 0.0]))
    assert not partly.ok and "9.9e-04 beyond the float32 allowance > 1.0e-04" in partly.describe()


def test_compare_evaluations_names_the_tensor_and_finds_missing_gradients() -> None:
    good = evaluation()
    bad = evaluation(**{"a.bias": np.array([1.0, -1.0])})
    errors = compare_evaluations(bad, good, TOL)
    assert [e.tensor for e in errors] == ["output", "loss", "a.kernel gradient", "a.bias gradient"]
    assert [e.tensor for e in failures(errors)] == ["a.bias gradient"]
    missing = Evaluation(good.output, good.loss, {"a.kernel": good.gradients["a.kernel"]})
    problems = failures(compare_evaluations(missing, good, TOL))
    assert [(e.tensor, e.problem) for e in problems] == [
        ("a.bias gradient", "missing in the first implementation")
    ]
    extra = Evaluation(good.output, good.loss, {**good.gradients, "b.kernel": np.ones(2)})
    assert "missing in the second" in failures(compare_evaluations(extra, good, TOL))[0].problem


def test_loss_and_output_have_their_own_tolerances() -> None:
    errors = compare_evaluations(evaluation(scale=1 + 5e-5), evaluation(), TOL)
    assert {e.tensor for e in failures(errors)} == {"output", "loss"}
    assert compare_evaluations(evaluation(scale=1 + 5e-6), evaluation(), TOL, gradients=False)[0].ok


def test_family_summary_reports_the_largest_errors_and_worst_tensor() -> None:
    errors = compare_evaluations(
        evaluation(
            **{"a.kernel": np.arange(6.0).reshape(2, 3) + 1e-3, "a.bias": np.array([1.0, -2.0 + 1e-6])}
        ),
        evaluation(),
        TOL,
    )
    families = summarize_families(errors)
    gradient = families["gradient"]
    assert gradient.worst == "a.kernel gradient"
    assert gradient.max_abs == pytest.approx(1e-3)
    assert gradient.max_rel == pytest.approx(1e-3 / 5.0, rel=1e-3)
    assert [e.tensor for e in gradient.failures] == ["a.kernel gradient"]
    assert families["output"].ok and families["loss"].ok


def test_every_workload_has_a_documented_float32_tolerance() -> None:
    for name in WORKLOADS:
        tol = tolerance_for(name)
        assert 0 < tol.output <= 1e-4 and 0 < tol.loss <= 1e-4 and 0 < tol.gradient <= 1e-3
        assert tol.why
    assert set(TOLERANCES) == set(WORKLOADS)
    with pytest.raises(DlbenchError):
        tolerance_for("vgg16")
