"""Step detection on series of run medians: exact answers on clean series, rates on seeded noisy ones."""

from __future__ import annotations

import numpy as np
import pytest

from dlbench.regress.steps import (
    MIN_NOISE,
    Segment,
    fit_levels,
    noise_scale,
    segment_costs,
    steps_between,
)


def noisy_series(rng: np.random.Generator, n: int, step_at: int | None = None, step: float = 0.0,
                 sigma: float = 0.03, outlier_rate: float = 0.0) -> list[float]:
    """Run medians: 3% log-normal noise, optionally a level step and whole runs 20-60% slower."""
    y = 10.0 * rng.lognormal(0.0, sigma, n)
    if step_at is not None:
        y[step_at:] *= 1.0 + step
    outliers = rng.random(n) < outlier_rate
    y[outliers] *= rng.uniform(1.2, 1.6, int(outliers.sum()))
    return [float(v) for v in y]


def test_a_clean_step_is_found_exactly() -> None:
    values = [10.0, 10.1, 9.9, 10.0, 10.05, 9.95, 12.0, 12.1, 11.9, 12.05, 12.0, 11.95]
    segments = fit_levels(values)
    assert [(s.start, s.end) for s in segments] == [(0, 6), (6, 12)]
    (step,) = steps_between(segments)
    assert step.index == 6 and step.before == pytest.approx(10.0) and step.after == pytest.approx(12.0)
    assert step.change == pytest.approx(0.2)


def test_up_then_down_gives_two_steps() -> None:
    values = [5.0] * 8 + [6.0] * 8 + [5.0] * 8
    assert [s.index for s in steps_between(fit_levels(values))] == [8, 16]


def test_constant_and_tiny_series_have_one_level() -> None:
    assert fit_levels([7.0] * 20) == [Segment(0, 20, 7.0)]
    assert fit_levels([7.0]) == [Segment(0, 1, 7.0)]
    assert fit_levels([7.0, 9.0]) == [Segment(0, 2, 8.0)]
    assert fit_levels([]) == []


def test_a_single_outlier_run_is_not_a_step() -> None:
    values = [10.0, 10.1, 9.9, 10.0, 10.05, 15.0, 10.0, 9.95, 10.1, 10.0]
    assert len(fit_levels(values)) == 1


def test_min_size_is_respected() -> None:
    rng = np.random.default_rng(4)
    for _ in range(50):
        values = noisy_series(rng, 15, step_at=int(rng.integers(1, 15)), step=0.3)
        assert all(s.end - s.start >= 3 for s in fit_levels(values, min_size=3))
    # with min_size=1 a step at the newest run is visible at once
    assert [s.index for s in steps_between(fit_levels([10.0] * 10 + [14.0], min_size=1))] == [10]


def test_an_explicit_penalty_overrides_the_default() -> None:
    values = [10.0] * 10 + [10.5] * 10  # a 5% step on a noiseless series
    assert len(fit_levels(values)) == 2
    assert len(fit_levels(values, penalty=10.0)) == 1


def test_non_positive_values_are_refused() -> None:
    with pytest.raises(ValueError):
        fit_levels([1.0, 0.0, 2.0])


def test_running_median_costs_match_brute_force() -> None:
    rng = np.random.default_rng(9)
    logs = list(rng.normal(0.0, 1.0, 25))
    costs = segment_costs(logs)
    for start in range(25):
        for end in range(start + 1, 26):
            chunk = np.asarray(logs[start:end])
            assert costs[start, end] == pytest.approx(np.abs(chunk - np.median(chunk)).sum(), abs=1e-9)


def test_noise_scale_is_robust_to_a_step_and_floored() -> None:
    rng = np.random.default_rng(2)
    logs = list(np.log(noisy_series(rng, 200, step_at=100, step=0.5, sigma=0.05)))
    assert noise_scale(logs) == pytest.approx(0.05, rel=0.2)
    assert noise_scale([1.0] * 10) == MIN_NOISE


# ----- rates on seeded synthetic series (deterministic; they document the chosen penalty) -----
@pytest.mark.parametrize(("outlier_rate", "bound"), [(0.0, 0.02), (0.05, 0.10)])
def test_pure_noise_rarely_yields_a_step(outlier_rate: float, bound: float) -> None:
    rng = np.random.default_rng(0)
    series = [noisy_series(rng, 30, outlier_rate=outlier_rate) for _ in range(200)]
    false_steps = sum(len(fit_levels(values)) > 1 for values in series)
    assert false_steps / len(series) <= bound


def test_a_fifteen_percent_step_is_found_at_the_right_run() -> None:
    rng = np.random.default_rng(1)
    found = 0
    for _ in range(200):
        steps = steps_between(fit_levels(noisy_series(rng, 30, step_at=15, step=0.15, outlier_rate=0.05)))
        found += any(abs(step.index - 15) <= 1 and step.change > 0.1 for step in steps)
    assert found / 200 >= 0.95
