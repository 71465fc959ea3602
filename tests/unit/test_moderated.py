"""The moderated round-level test: an empirical-Bayes prior of the between-round variance across cases.

The simulations use the seeded many-case noise model of tests/rounds_model.py (per-case process spreads
of 1-3%, 10% of the cases four times noisier, heavy-tailed process offsets); benchmarks/round_power.py
runs them with more trials and prints the figures quoted in docs/ci.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from dlbench.record.results import CaseResult
from dlbench.regress.verdict import PLAIN_T, REGRESSED, Policy, compare_runs
from dlbench.statistics.moderated import MIN_PRIOR_CASES, VariancePrior, fit_prior, moderate
from dlbench.statistics.significance import (
    ROUND_MODERATED_T,
    ROUND_PAIRED_MODERATED_T,
    ROUND_PAIRED_T,
    ROUND_T,
    round_contrast,
    round_test,
    rounds_change,
)
from tests.regress_fixtures import dlbench_main, make_case, make_result, make_run, write_run
from tests.rounds_model import case_sigmas, draw_case_pair, draw_rounds, draw_turns_pair, regressed_flags


def test_fit_prior_recovers_the_scaled_f_parameters() -> None:
    """Variances drawn exactly from the model (true variances scaled inverse chi-square on d0 = 8 around
    s0^2 = 4e-4, each observed on 4 degrees of freedom): the moment estimate lands near both; the refit
    leaves out about 1% of the cases as outliers (the OUTLIER_P tail), which lifts d0 a little."""
    rng = np.random.default_rng(1)
    truth = 4e-4 * 8 / rng.chisquare(8, 4000)
    observed = truth * rng.chisquare(4, truth.size) / 4
    prior = fit_prior(observed, [4] * truth.size)
    assert prior is not None and 0.97 * truth.size <= prior.cases <= truth.size
    assert prior.df == pytest.approx(8, rel=0.25)
    assert prior.variance == pytest.approx(4e-4, rel=0.1)


def test_fit_prior_caps_its_weight_at_the_pooled_degrees_of_freedom_and_needs_enough_cases() -> None:
    rng = np.random.default_rng(2)
    same = 1e-4 * rng.chisquare(4, 20) / 4  # one true variance for all: d0 would be infinite
    prior = fit_prior(same, [4] * 20)
    assert prior is not None and prior.df <= 80
    assert prior.variance == pytest.approx(1e-4, rel=0.5)
    assert fit_prior(same[: MIN_PRIOR_CASES - 1], [4] * (MIN_PRIOR_CASES - 1)) is None
    assert fit_prior([0.0] * 10, [4] * 10) is None  # exactly repeated timings carry no scale


def test_moderate_shrinks_typical_variances_and_leaves_outliers_alone() -> None:
    prior = VariancePrior(df=12.0, variance=4e-4, cases=40)
    variance, df = moderate(1e-4, 4, prior)
    assert df == 16 and variance == pytest.approx((12 * 4e-4 + 4 * 1e-4) / 16)
    assert moderate(1e-4, 4, None) == (1e-4, 4.0)
    huge = 4e-4 * float(sps.f.isf(0.001, 4, 12))  # far in the prior's upper tail: a noisy case
    assert not prior.admits(huge, 4)
    assert moderate(huge, 4, prior) == (huge, 4.0)


def test_round_test_plain_and_paired_equal_scipy_and_the_prior_adds_its_degrees_of_freedom() -> None:
    base = [[10.0] * 5, [10.4] * 5, [9.8] * 5]
    cur = [[11.0] * 5, [11.6] * 5, [10.7] * 5]
    lb, lc = np.log([10.0, 10.4, 9.8]), np.log([11.0, 11.6, 10.7])
    assert round_test(base, cur)[3] == pytest.approx(sps.ttest_ind(lc, lb).pvalue)
    paired = sps.ttest_rel(lc, lb)
    ratio, low, high, p_value = round_test(base, cur, paired=True)
    assert p_value == pytest.approx(paired.pvalue)
    assert (low, high) == pytest.approx(tuple(np.exp(paired.confidence_interval(0.95))))
    assert ratio == pytest.approx(np.exp((lc - lb).mean()))
    contrast = round_contrast(base, cur)
    prior = VariancePrior(df=20.0, variance=contrast.variance, cases=30)
    t = contrast.difference / (math.sqrt(contrast.variance) * contrast.scale)
    assert round_test(base, cur, prior=prior)[3] == pytest.approx(2 * sps.t.sf(abs(t), 24))


def test_rounds_change_names_the_test_it_used() -> None:
    rng = np.random.default_rng(3)
    base, cur = draw_rounds(rng, 3, 10.0), draw_rounds(rng, 3, 10.0)
    prior = VariancePrior(df=20.0, variance=4e-4, cases=30)
    assert rounds_change(base, cur, 0.01).method == ROUND_T
    assert rounds_change(base, cur, 0.01, prior).method == ROUND_MODERATED_T
    assert rounds_change(base, cur, 0.01, None, paired=True).method == ROUND_PAIRED_T
    assert rounds_change(base, cur, 0.01, prior, paired=True).method == ROUND_PAIRED_MODERATED_T
    # a failed round on one side: no pairing, and the paired prior does not fit an unpaired variance
    assert rounds_change(base, cur[:2], 0.01, prior, paired=True).method == ROUND_T


def _comparison_of(cases: int, rounds: int, slowdown: float, seed: int) -> tuple[list[CaseResult], ...]:
    rng = np.random.default_rng(seed)
    sides: tuple[list[CaseResult], list[CaseResult]] = ([], [])
    for i in range(cases):
        pair = draw_case_pair(rng, rounds, 0.02, slowdown)
        for side, data in zip(sides, pair, strict=True):
            result = make_result(case=make_case(batch_size=i + 1), samples=data[0])
            for more in data[1:]:
                result = result.add_round(make_result(samples=more))
            side.append(result)
    return sides


def test_compare_runs_fits_one_prior_across_the_cases_by_default() -> None:
    base, cur = _comparison_of(12, 3, 1.15, seed=4)
    moderated = compare_runs(make_run("b", base), make_run("c", cur), Policy())
    assert moderated.variance_prior is not None and moderated.variance_prior.cases == 12
    assert {c.timing.method for c in moderated.cases if c.timing} <= {ROUND_MODERATED_T, ROUND_T}
    assert any(c.timing.method == ROUND_MODERATED_T for c in moderated.cases if c.timing)
    plain = compare_runs(make_run("b", base), make_run("c", cur), Policy(round_test=PLAIN_T))
    assert plain.variance_prior is None
    assert all(c.timing.method == ROUND_T for c in plain.cases if c.timing)
    # the same data: the moderated test finds at least as many of the 15% slow-downs
    assert len(moderated.with_verdict(REGRESSED)) >= len(plain.with_verdict(REGRESSED))


def _rates(rounds: int, slowdown: float, moderated: bool, paired: bool, shared: float,
           trials: int, seed: int, turns: bool = False, by_sample: bool = False) -> tuple[float, float]:
    """(share of affected cases found regressed, share of unaffected cases flagged) over ``trials``
    comparisons of 40 cases, half of them affected (none in A/A); with ``turns`` an A/B run whose sides
    took turns sample by sample (tests/rounds_model.draw_turns_pair)."""
    rng = np.random.default_rng(seed)
    policy = Policy()
    found = flagged = affected_n = unaffected_n = 0
    for _ in range(trials):
        sigmas, _ = case_sigmas(rng, 40)
        affected = np.arange(40) < (20 if slowdown != 1.0 else 0)
        pairs = [draw_turns_pair(rng, rounds, float(s), slowdown if a else 1.0) if turns
                 else draw_case_pair(rng, rounds, float(s), slowdown if a else 1.0, shared)
                 for s, a in zip(sigmas, affected, strict=True)]
        flags = np.asarray(regressed_flags(pairs, policy, moderated, paired, by_sample))
        found += int((flags & affected).sum())
        flagged += int((flags & ~affected).sum())
        affected_n += int(affected.sum())
        unaffected_n += int((~affected).sum())
    return found / max(affected_n, 1), flagged / unaffected_n


def test_moderated_test_keeps_false_alarms_rare_and_raises_power_at_three_rounds() -> None:
    """Two runs of 40 cases, 3 rounds a side, heavy-tailed noise with a few noisy cases (seeded, 12
    comparisons per cell). A/A: at most 1% of the cases flagged (the benchmark's 100 comparisons give
    about 0.2-0.5%). A 10% slow-down of half the cases: the moderated test finds at least 80% of them
    (about 90% in the benchmark; the noisy cases, four times the spread, cap it) and clearly more than the
    plain t-test on 4 degrees of freedom (about 65%), while flagging at most 1% of the unaffected half."""
    aa_found, aa_flagged = _rates(3, 1.0, True, False, 0.0, 12, seed=11)
    assert aa_flagged <= 0.01
    power, flagged = _rates(3, 1.10, True, False, 0.0, 12, seed=12)
    plain_power, _ = _rates(3, 1.10, False, False, 0.0, 12, seed=12)
    assert power >= 0.8 and power >= plain_power + 0.1
    assert flagged <= 0.01


def test_paired_moderated_test_cancels_the_shared_round_state_of_an_ab_run() -> None:
    """One interleaved A/B run, 3 rounds, a 5% heavy-tailed machine state shared by both sides of a round:
    the paired moderated test finds at least 75% of a 10% slow-down (about 85% in the benchmark) where the
    unpaired moderated test, which sees the shared state as noise, finds far fewer; A/A at most 1%."""
    _, aa_flagged = _rates(3, 1.0, True, True, 0.05, 12, seed=13)
    assert aa_flagged <= 0.01
    power, flagged = _rates(3, 1.10, True, True, 0.05, 12, seed=14)
    unpaired, _ = _rates(3, 1.10, True, False, 0.05, 12, seed=14)
    assert power >= 0.75 and power >= unpaired + 0.2
    assert flagged <= 0.01


def test_pairing_samples_cancels_the_drift_within_the_rounds_of_an_ab_run_that_took_turns() -> None:
    """An A/B run whose sides took turns sample by sample, 3 rounds, the machine's speed drifting by 20%
    within each round (seeded, 12 comparisons per cell). Pairing the samples finds at least 70% of a 10%
    slow-down (about 83% in the benchmark, 87% of the cases that are not noisy) where pairing the round
    medians, which keep each side's share of the drift, finds about 54%; A/A at most 1% flagged."""
    _, aa_flagged = _rates(3, 1.0, True, True, 0.0, 12, seed=15, turns=True, by_sample=True)
    assert aa_flagged <= 0.01
    power, flagged = _rates(3, 1.10, True, True, 0.0, 12, seed=16, turns=True, by_sample=True)
    by_rounds, _ = _rates(3, 1.10, True, True, 0.0, 12, seed=16, turns=True)
    assert power >= 0.7 and power >= by_rounds + 0.15
    assert flagged <= 0.01


def test_compare_cli_reports_the_prior_and_round_test_t_turns_it_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    base, cur = _comparison_of(8, 3, 1.0, seed=5)
    write_run(tmp_path / "b", make_run("b", base))
    write_run(tmp_path / "c", make_run("c", cur))
    dlbench_main(monkeypatch, "compare", str(tmp_path / "b"), str(tmp_path / "c"), "--format", "json")
    moderated = json.loads(capsys.readouterr().out)
    assert moderated["policy"]["round_test"] == "moderated" and moderated["variance_prior"]["cases"] == 8
    dlbench_main(monkeypatch, "compare", str(tmp_path / "b"), str(tmp_path / "c"), "--round-test", "t")
    assert "t-test on the log round medians" in capsys.readouterr().out
    dlbench_main(monkeypatch, "compare", str(tmp_path / "b"), str(tmp_path / "c"), "--round-test", "t",
                 "--format", "json")
    plain = json.loads(capsys.readouterr().out)
    assert plain["variance_prior"] is None
    assert {c["timing"]["method"] for c in plain["cases"]} == {ROUND_T}
