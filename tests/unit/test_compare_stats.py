"""The statistics behind ``dlbench compare``: power on a real slow-down, false alarms on identical runs,
the few-samples fallback and the ratio interval. Every random draw comes from a fixed seed, so these tests
give the same answer on every machine and cannot flake."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from dlbench.regress.verdict import REGRESSED, Policy, classify_ratio, compare_results
from dlbench.statistics.significance import (
    CI_OVERLAP,
    MANN_WHITNEY,
    is_different,
    ratio_interval,
    smallest_p_value,
    timing_change,
)
from tests.regress_fixtures import make_result, noisy_samples

SIGMA = 0.08  # log-normal jitter: IQR about 11% of the median, a noisy shared CI machine
OUTLIERS = 0.08  # 8% of samples hit by a preemption 1.3-3x slower


def draw_pair(rng: np.random.Generator, slowdown: float) -> tuple[list[float], list[float]]:
    n_base, n_cur = (int(n) for n in rng.integers(10, 31, size=2))
    baseline = noisy_samples(rng, n_base, 10.0, SIGMA, OUTLIERS)
    current = noisy_samples(rng, n_cur, 10.0 * slowdown, SIGMA, OUTLIERS)
    return baseline, current


def decide(baseline: list[float], current: list[float], policy: Policy) -> str:
    """The timing decision of compare_results without the display statistics (which cost ~8 ms a pair)."""
    significant, _, _ = is_different(baseline, current, policy.alpha)
    ratio = float(np.median(current) / np.median(baseline))
    return classify_ratio(ratio, significant, policy.threshold)


def decide_both(baseline: list[float], current: list[float], alpha: float) -> tuple[str, str]:
    """The decision without any threshold, and with the default one, from one significance test."""
    significant, _, _ = is_different(baseline, current, alpha)
    ratio = float(np.median(current) / np.median(baseline))
    return classify_ratio(ratio, significant, 0.0), classify_ratio(ratio, significant, Policy().threshold)


def test_a_twenty_percent_slowdown_is_flagged_through_the_full_comparison() -> None:
    rng = np.random.default_rng(20)
    policy = Policy()
    verdicts = []
    for _ in range(100):
        baseline, current = draw_pair(rng, 1.20)
        result = compare_results(make_result(samples=baseline), make_result(samples=current), policy)
        verdicts.append(result.verdict)
    power = verdicts.count(REGRESSED) / len(verdicts)
    assert power >= 0.9, f"only {power:.0%} of 20% slow-downs were flagged"


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_false_alarm_rate_on_identical_distributions_stays_within_alpha(alpha: float) -> None:
    """Under identical distributions the two-sided test rejects with probability <= alpha, half of it in
    the slower direction, so 'regressed' has probability <= alpha/2 per pair. Over N pairs the count is
    then at most Binomial(N, alpha/2); we allow its 99.9% quantile. The seed is fixed, so the outcome is
    deterministic: the bound documents how far from the design level the rate may be."""
    rng = np.random.default_rng(7)
    pairs = 1500
    decisions = [decide_both(*draw_pair(rng, 1.0), alpha) for _ in range(pairs)]
    bare = [without for without, _ in decisions]  # no threshold: the test alone must hold the rate
    regressed = bare.count(REGRESSED)
    significant = sum(v != "unchanged" for v in bare)
    assert regressed <= sps.binom.ppf(0.999, pairs, alpha / 2)
    assert significant <= sps.binom.ppf(0.999, pairs, alpha)
    # the default threshold can only lower it further
    assert [with_ for _, with_ in decisions].count(REGRESSED) <= regressed


def test_decide_matches_compare_results() -> None:
    """The shortcut used for the false-alarm count takes the same decision as the real code path."""
    rng = np.random.default_rng(3)
    policy = Policy(threshold=0.0)
    for slowdown in (1.0, 1.05, 1.2, 0.8):
        for _ in range(10):
            baseline, current = draw_pair(rng, slowdown)
            full = compare_results(make_result(samples=baseline), make_result(samples=current), policy)
            assert full.timing_verdict == decide(baseline, current, policy)


def test_a_small_significant_shift_below_the_threshold_is_not_a_regression() -> None:
    rng = np.random.default_rng(11)
    baseline = noisy_samples(rng, 200, 10.0, 0.01, 0.0)
    current = noisy_samples(rng, 200, 10.2, 0.01, 0.0)  # 2% slower, very significant with 200 samples
    change = timing_change(baseline, current, alpha=0.01)
    assert change.significant and change.method == MANN_WHITNEY
    assert classify_ratio(change.ratio, change.significant, 0.05) == "unchanged"
    assert classify_ratio(change.ratio, change.significant, 0.01) == REGRESSED


def test_a_big_ratio_without_significance_is_not_a_regression() -> None:
    baseline = [10.0, 30.0, 10.5, 29.0, 10.2, 31.0, 9.9, 30.5]
    current = [30.0, 10.1, 29.5, 10.3, 31.0, 10.0, 30.2, 29.8]  # median jumps, distributions overlap
    change = timing_change(baseline, current, alpha=0.01)
    assert change.ratio > 1.5
    assert not change.significant
    assert classify_ratio(change.ratio, change.significant, 0.05) == "unchanged"


def test_smallest_p_value_of_the_exact_test() -> None:
    assert smallest_p_value(3, 3) == pytest.approx(0.1)
    assert smallest_p_value(4, 4) == pytest.approx(2 / 70)
    assert smallest_p_value(5, 5) == pytest.approx(2 / 252)
    assert smallest_p_value(1, 1) == 1.0


def test_few_samples_fall_back_to_confidence_interval_overlap() -> None:
    significant, p_value, method = is_different([10.0, 10.1, 10.2], [12.0, 12.1, 12.3], alpha=0.01)
    assert (significant, p_value, method) == (True, None, CI_OVERLAP)
    significant, _, method = is_different([10.0, 10.1, 12.2], [12.0, 12.1, 12.3], alpha=0.01)
    assert method == CI_OVERLAP and not significant
    # 5 + 5 samples can reach p = 0.008 < 0.01: the real test is used
    assert is_different([1.0, 1.1, 1.2, 1.3, 1.4], [2.0, 2.1, 2.2, 2.3, 2.4], alpha=0.01)[2] == MANN_WHITNEY


def test_identical_tied_samples_are_not_different() -> None:
    significant, p_value, method = is_different([5.0] * 10, [5.0] * 10, alpha=0.01)
    assert method == MANN_WHITNEY and p_value == 1.0 and not significant


def test_ratio_interval_covers_the_true_ratio_at_least_at_its_level() -> None:
    rng = np.random.default_rng(5)
    trials, covered = 400, 0
    for _ in range(trials):
        baseline = 10.0 * rng.lognormal(0.0, 0.1, size=15)
        current = 12.0 * rng.lognormal(0.0, 0.1, size=15)
        low, high = ratio_interval(list(baseline), list(current))
        covered += low <= 1.2 <= high  # the true ratio of medians is exactly 1.2
    # the interval is conservative (>= 95%); allow the binomial 99.9% low quantile of a 95% rate
    assert covered >= sps.binom.ppf(0.001, trials, 0.95)


def test_ratio_and_interval_are_ordered_and_finite() -> None:
    change = timing_change([10.0, 10.2, 9.8, 10.1, 9.9, 10.0], [12.0, 12.2, 11.8, 12.1, 11.9, 12.0], 0.01)
    assert change.ratio == pytest.approx(1.2)
    assert change.ratio_low <= change.ratio <= change.ratio_high
    assert math.isfinite(change.ratio_high)
    assert change.change == pytest.approx(0.2)
