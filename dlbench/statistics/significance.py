"""Is a case's current timing really different from its baseline, and by how much?

Shared CI machines are noisy, so one ratio of two medians proves nothing. Two questions are answered
separately, on the raw per-iteration samples:

* **How big is the change?** The ratio of medians ``current / baseline`` with an interval built from the
  two distribution-free median confidence intervals of :func:`dlbench.statistics.samples.median_ci`:
  ``[cur_low / base_high, cur_high / base_low]``. Each median interval is taken at ``sqrt(0.95)`` so that
  both cover their true medians together with probability at least 95% (the samples of the two runs are
  independent), and whenever both do, the interval covers the true ratio. It is conservative, needs no
  random resampling (the output is reproducible) and makes no assumption on the shape of the noise.
* **Is the change real?** A two-sided Mann-Whitney U test (scipy) on the two sets of samples: rank based,
  so a few preempted iterations cannot dominate it, and valid for any continuous distribution. With very
  few samples the test cannot reach the significance level at all (its smallest possible two-sided
  p-value is ``2 / C(n1 + n2, n1)``, e.g. 0.029 for 4 + 4 samples); then the decision falls back to
  non-overlap of the two medians' ``1 - alpha`` confidence intervals, which for such small samples are
  their full ranges: "every current sample is slower than every baseline sample". That fallback is
  weaker than its nominal level and the output names the method used, so a reader can see it.

Both of the above look at the samples *within* one worker process per run, so they answer "did these
two processes differ?". A process draws its own luck (memory layout, core, frequency, neighbours), so
when **both runs measured the case in two rounds or more** (``dlbench run --repeat R``) the question is
answered one level up, on the round medians (:mod:`dlbench.statistics.rounds`): Student's two-sample t-test on
their logarithms (pooled variance: on a log scale a slow-down shifts and does not stretch, so both sides
share one spread; df = R1 + R2 - 2), and the ratio interval is its ``RATIO_CONFIDENCE`` t-interval of
the difference of mean log round medians, exponentiated; the ratio is the ratio of the geometric means
of the round medians. With one round on either side the sample-level test above decides and the
comparison says that between-process variation is unaccounted for.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

from dlbench.statistics.moderated import VariancePrior, fit_prior, moderate
from dlbench.statistics.rounds import round_medians, summarize_rounds
from dlbench.statistics.samples import Summary, median_ci, summarize

MANN_WHITNEY = "mann-whitney"
CI_OVERLAP = "ci-overlap"
ROUND_T = "round-t"  # Student's pooled t on log round medians
ROUND_PAIRED_T = "round-paired-t"  # paired t on the per-round log ratios (one interleaved A/B run)
ROUND_MODERATED_T = "round-moderated-t"  # pooled, variance shrunk towards the across-case prior
ROUND_PAIRED_MODERATED_T = "round-paired-moderated-t"
# the sides took turns sample by sample (dlbench run --interleave samples): a round's log ratio is the median
# of the log ratios of its sample pairs, each pair measured at the same moment
ROUND_SAMPLE_PAIRED_T = "round-sample-paired-t"
ROUND_SAMPLE_PAIRED_MODERATED_T = "round-sample-paired-moderated-t"
ROUND_METHODS = frozenset({ROUND_T, ROUND_PAIRED_T, ROUND_MODERATED_T, ROUND_PAIRED_MODERATED_T,
                           ROUND_SAMPLE_PAIRED_T, ROUND_SAMPLE_PAIRED_MODERATED_T})
MODERATED_METHODS = frozenset({ROUND_MODERATED_T, ROUND_PAIRED_MODERATED_T, ROUND_SAMPLE_PAIRED_MODERATED_T})
RATIO_CONFIDENCE = 0.95


@dataclass(frozen=True)
class TimingChange:
    """Baseline vs current timing of one case: effect size, its uncertainty, and significance."""

    baseline: Summary
    current: Summary
    ratio: float  # median(current) / median(baseline): above 1 is slower
    ratio_low: float  # RATIO_CONFIDENCE interval of the ratio (see module docstring)
    ratio_high: float
    p_value: float | None  # two-sided p-value; None when the CI-overlap fallback decided
    method: str  # MANN_WHITNEY, CI_OVERLAP (samples of one process per side) or one of ROUND_METHODS
    significant: bool

    @property
    def between_rounds(self) -> bool:
        """True when the verdict rests on round-level (between-process) variation."""
        return self.method in ROUND_METHODS

    @property
    def change(self) -> float:
        """Relative change of the median: +0.20 is 20% slower."""
        return self.ratio - 1.0


def _divide(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.inf


def ratio_interval(
    baseline: Sequence[float], current: Sequence[float], confidence: float = RATIO_CONFIDENCE
) -> tuple[float, float]:
    """Conservative ``confidence`` interval of median(current) / median(baseline) (see module docstring)."""
    each = math.sqrt(confidence)
    base_low, base_high = median_ci(baseline, each)
    cur_low, cur_high = median_ci(current, each)
    return _divide(cur_low, base_high), _divide(cur_high, base_low)


def smallest_p_value(n1: int, n2: int) -> float:
    """The smallest two-sided Mann-Whitney p-value that samples of these sizes can produce (no ties)."""
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def is_different(
    baseline: Sequence[float], current: Sequence[float], alpha: float
) -> tuple[bool, float | None, str]:
    """``(significant, p_value, method)`` for the hypothesis that both samples share one distribution."""
    if smallest_p_value(len(baseline), len(current)) <= alpha:
        p_value = float(sps.mannwhitneyu(current, baseline, alternative="two-sided").pvalue)
        if math.isnan(p_value):  # all samples tied: no evidence of any difference
            p_value = 1.0
        return p_value < alpha, p_value, MANN_WHITNEY
    base_low, base_high = median_ci(baseline, 1.0 - alpha)
    cur_low, cur_high = median_ci(current, 1.0 - alpha)
    return cur_low > base_high or cur_high < base_low, None, CI_OVERLAP


def timing_change(baseline: Sequence[float], current: Sequence[float], alpha: float) -> TimingChange:
    """Compare two non-empty sets of per-iteration times (ms)."""
    base, cur = summarize(baseline), summarize(current)
    low, high = ratio_interval(baseline, current)
    significant, p_value, method = is_different(baseline, current, alpha)
    return TimingChange(
        baseline=base,
        current=cur,
        ratio=_divide(cur.median, base.median),
        ratio_low=low,
        ratio_high=high,
        p_value=p_value,
        method=method,
        significant=significant,
    )


@dataclass(frozen=True)
class RoundContrast:
    """The round-level evidence of one case before any test: the difference of mean log round medians
    (current - baseline), the variance estimate it is judged against, its degrees of freedom, and the
    factor turning that variance's square root into the difference's standard error."""

    difference: float
    variance: float
    df: int
    scale: float
    paired: bool


def sample_paired_log_ratios(baseline_rounds: Sequence[Sequence[float]],
                             current_rounds: Sequence[Sequence[float]]) -> np.ndarray:
    """Per round, the median of ``log(current[i] / baseline[i])`` over the samples both sides took.

    For the environments of an A/B run that took turns sample by sample (``--interleave samples``): sample
    ``i`` of both sides ran one right after the other, so each pair saw the same state of the machine, and
    its ratio is free of the drift that the round medians of each side carry separately."""
    ratios = []
    for base, cur in zip(baseline_rounds, current_rounds, strict=True):
        n = min(len(base), len(cur))
        ratios.append(float(np.median(np.log(np.asarray(cur[:n], dtype=float) / np.asarray(base[:n], dtype=float)))))
    return np.asarray(ratios)


def round_contrast(baseline_rounds: Sequence[Sequence[float]], current_rounds: Sequence[Sequence[float]],
                   paired: bool = False, by_sample: bool = False) -> RoundContrast:
    """Pooled two-sample contrast of the log round medians (df = R1 + R2 - 2); with ``paired`` and as many
    rounds on both sides, the paired one: the per-round log ratios current/baseline (df = R - 1), with
    ``by_sample`` those of :func:`sample_paired_log_ratios`.

    Pairing is for the two environments of one interleaved A/B run, whose round ``r`` ran back to back (or
    side by side, taking turns): a slow round of the machine then slows both sides alike and cancels in
    the ratio."""
    base = np.log(round_medians(baseline_rounds))
    cur = np.log(round_medians(current_rounds))
    if base.size < 2 or cur.size < 2:
        raise ValueError("a round-level test needs two rounds or more on each side")
    if paired and base.size == cur.size:
        ratios = sample_paired_log_ratios(baseline_rounds, current_rounds) if by_sample else cur - base
        return RoundContrast(float(ratios.mean()), float(ratios.var(ddof=1)), ratios.size - 1,
                             math.sqrt(1.0 / ratios.size), True)
    df = base.size + cur.size - 2
    pooled = (((base - base.mean()) ** 2).sum() + ((cur - cur.mean()) ** 2).sum()) / df
    return RoundContrast(float(cur.mean() - base.mean()), float(pooled), df,
                         math.sqrt(1.0 / base.size + 1.0 / cur.size), False)


def round_test(
    baseline_rounds: Sequence[Sequence[float]], current_rounds: Sequence[Sequence[float]],
    confidence: float = RATIO_CONFIDENCE, prior: VariancePrior | None = None, paired: bool = False,
    by_sample: bool = False,
) -> tuple[float, float, float, float]:
    """``(ratio, ratio_low, ratio_high, p_value)`` from the round medians of two runs (two rounds or more
    each): Student's t on the :func:`round_contrast`, its variance moderated by ``prior`` when one is
    given (:mod:`dlbench.statistics.moderated`). Without a prior and unpaired it is scipy's pooled
    ``ttest_ind`` on the log round medians."""
    return contrast_test(round_contrast(baseline_rounds, current_rounds, paired, by_sample), confidence, prior)


def contrast_test(contrast: RoundContrast, confidence: float = RATIO_CONFIDENCE,
                  prior: VariancePrior | None = None) -> tuple[float, float, float, float]:
    """:func:`round_test` of a contrast already taken."""
    variance, df = moderate(contrast.variance, contrast.df, prior)
    se = math.sqrt(variance) * contrast.scale
    diff = contrast.difference
    if se == 0.0:  # no spread at all: any difference is certain
        p_value = 1.0 if diff == 0.0 else 0.0
        low = high = diff
    else:
        p_value = float(2.0 * sps.t.sf(abs(diff) / se, df))
        half = float(sps.t.ppf(0.5 + confidence / 2, df)) * se
        low, high = diff - half, diff + half
    return float(np.exp(diff)), float(np.exp(low)), float(np.exp(high)), p_value


def round_prior(pairs: Sequence[tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]]],
                paired: bool = False, by_sample: bool = False) -> VariancePrior | None:
    """The across-case prior of the round-level variance (:func:`dlbench.statistics.moderated.fit_prior`)
    from every ``(baseline_rounds, current_rounds)`` pair with two rounds or more on both sides, each
    taken as :func:`rounds_change` will take it. With ``paired``, only the pairs with as many rounds on
    both sides (the others are judged unpaired, by the plain t-test: a paired prior does not fit them)."""
    variances, dfs = [], []
    for base_rounds, cur_rounds in pairs:
        base = [r for r in base_rounds if len(r)]
        cur = [r for r in cur_rounds if len(r)]
        if len(base) >= 2 and len(cur) >= 2 and (not paired or len(base) == len(cur)):
            contrast = round_contrast(base, cur, paired, by_sample)
            variances.append(contrast.variance)
            dfs.append(contrast.df)
    return fit_prior(variances, dfs)


def round_method(moderated: bool, paired: bool, by_sample: bool = False) -> str:
    if paired and by_sample:
        return ROUND_SAMPLE_PAIRED_MODERATED_T if moderated else ROUND_SAMPLE_PAIRED_T
    return {(False, False): ROUND_T, (True, False): ROUND_PAIRED_T, (False, True): ROUND_MODERATED_T,
            (True, True): ROUND_PAIRED_MODERATED_T}[(paired, moderated)]


def rounds_change(
    baseline_rounds: Sequence[Sequence[float]], current_rounds: Sequence[Sequence[float]], alpha: float,
    prior: VariancePrior | None = None, paired: bool = False, by_sample: bool = False,
) -> TimingChange:
    """Compare two cases measured in rounds: at round level when both have two rounds or more (with the
    across-case ``prior`` and pairing of :func:`round_test`), otherwise on the pooled samples with
    :func:`timing_change` (between-process variation then unaccounted for)."""
    base = [list(r) for r in baseline_rounds if len(r)]
    cur = [list(r) for r in current_rounds if len(r)]
    if len(base) < 2 or len(cur) < 2:
        change = timing_change([x for r in base for x in r], [x for r in cur for x in r], alpha)
        if len(base) < 2 and len(cur) < 2:
            return change
        # one side has rounds: keep its round-level headline, but the test is the sample-level one
        return replace(change, baseline=summarize_rounds(base), current=summarize_rounds(cur))
    if paired and len(base) != len(cur):  # a round failed on one side: unpaired, and the prior is not theirs
        paired, prior = False, None
    contrast = round_contrast(base, cur, paired, by_sample)
    ratio, low, high, p_value = contrast_test(contrast, prior=prior)
    moderated = prior is not None and prior.admits(contrast.variance, contrast.df)
    return TimingChange(
        baseline=summarize_rounds(base), current=summarize_rounds(cur), ratio=ratio, ratio_low=low,
        ratio_high=high, p_value=p_value, method=round_method(moderated, paired, by_sample),
        significant=p_value < alpha,
    )


# ----- single readings per round (memory peaks) -----
READINGS_T = "round-readings-t"  # Welch t-test on one reading per round
READINGS_PAIRED_T = "round-readings-paired-t"  # paired t-test, round r of one side against round r of the other
READINGS_EXACT = "round-readings-exact"  # every round read the same value on each side: no test needed
READINGS_ONE_ROUND = "one-reading"  # one round on a side: nothing to test, the thresholds alone decide


@dataclass(frozen=True)
class ReadingsChange:
    """Two sets of per-round readings of one figure (e.g. a memory peak in bytes), compared."""

    baseline: float  # the median reading over the rounds
    current: float
    rounds: tuple[int, int]  # how many readings on each side
    p_value: float | None  # None where there was nothing to test
    method: str
    significant: bool  # whether the change is beyond the rounds' own variation (True with one round)

    @property
    def ratio(self) -> float:
        if self.baseline > 0:
            return self.current / self.baseline
        return 1.0 if self.current == 0 else math.inf


def readings_change(baseline: Sequence[float], current: Sequence[float], alpha: float,
                    paired: bool = False) -> ReadingsChange:
    """Whether a figure read once per round (a memory peak) differs between two runs beyond its variation
    between rounds: a t-test on the readings (paired when both sides' rounds ran side by side), as the
    round-level test of time does on round medians. A figure that reads the same in every round of both
    sides (a compiled program's memory analysis) differs exactly or not at all; with one round on a side
    there is no variation to test against, and only the caller's thresholds decide."""
    base, cur = np.asarray(baseline, dtype=float), np.asarray(current, dtype=float)
    middle = (float(np.median(base)), float(np.median(cur)))
    rounds = (len(base), len(cur))
    if min(rounds) < 2:
        return ReadingsChange(*middle, rounds, None, READINGS_ONE_ROUND, True)
    if np.ptp(base) == 0 and np.ptp(cur) == 0:
        differ = bool(base[0] != cur[0])
        return ReadingsChange(*middle, rounds, 0.0 if differ else 1.0, READINGS_EXACT, differ)
    if paired and len(base) == len(cur):
        differences = cur - base
        if np.ptp(differences) == 0:  # the same shift in every round: exact, and a t-test would divide by 0
            differ = bool(differences[0] != 0)
            return ReadingsChange(*middle, rounds, 0.0 if differ else 1.0, READINGS_EXACT, differ)
        with warnings.catch_warnings():  # nearly equal readings: scipy warns, the p-value is still right
            warnings.simplefilter("ignore", RuntimeWarning)
            p_value = float(sps.ttest_rel(cur, base).pvalue)
        return ReadingsChange(*middle, rounds, p_value, READINGS_PAIRED_T, p_value < alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(sps.ttest_ind(cur, base, equal_var=False).pvalue)
    if math.isnan(p_value):
        p_value = 1.0
    return ReadingsChange(*middle, rounds, p_value, READINGS_T, p_value < alpha)
