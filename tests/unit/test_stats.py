"""Statistics on synthetic samples with known answers."""

import numpy as np
import pytest

from dlbench.stats import median_ci, summarize


def test_summary_of_known_samples() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s.n == 5 and s.median == 3.0 and s.min == 1.0 and s.max == 100.0
    assert s.iqr == pytest.approx(2.0)
    assert s.mean == pytest.approx(22.0)
    assert s.noisy  # IQR is 67% of the median


def test_quiet_samples_are_not_noisy() -> None:
    rng = np.random.default_rng(0)
    assert not summarize(10 + rng.normal(0, 0.1, 50)).noisy


def test_median_ci_contains_the_median_and_narrows_with_n() -> None:
    rng = np.random.default_rng(1)
    small = rng.lognormal(0, 0.1, 10)
    large = rng.lognormal(0, 0.1, 1000)
    lo, hi = median_ci(small)
    assert lo <= np.median(small) <= hi
    lo2, hi2 = median_ci(large)
    assert hi2 - lo2 < hi - lo


def test_median_ci_with_few_samples_is_the_range() -> None:
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)
    assert median_ci([5.0]) == (5.0, 5.0)


def test_median_ci_coverage_is_at_least_nominal() -> None:
    """Over many synthetic data sets the interval covers the true median about 95% of the time."""
    rng = np.random.default_rng(2)
    true_median = 1.0  # lognormal(0, s) has median exp(0)
    trials, covered = 2000, 0
    for _ in range(trials):
        lo, hi = median_ci(rng.lognormal(0.0, 0.3, 25))
        covered += lo <= true_median <= hi
    assert 0.94 <= covered / trials <= 0.995


def test_empty_samples_are_rejected() -> None:
    with pytest.raises(ValueError):
        summarize([])
