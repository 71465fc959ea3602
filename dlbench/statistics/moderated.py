"""Borrowing strength across cases: an empirical-Bayes prior for the between-round variance.

With 3 rounds a side, the t-test on one case's log round medians has 4 degrees of freedom: its variance
estimate rests on 6 numbers, so the critical value is large (t = 4.6 at a two-sided 1%) and a 10%
slow-down is missed in many pairs. Yet a run measures dozens of cases on the same machine in the same
rounds, and their between-round variances are alike. The moderated t-statistic of Smyth (*Linear models
and empirical Bayes methods for assessing differential expression in microarray experiments*, Stat. Appl.
Genet. Mol. Biol. 3, 2004; the ``limma`` package) uses exactly that:

* Model: each case's sample variance ``s2`` (on ``d`` degrees of freedom) scatters around its true
  variance as a scaled chi-square, and the true variances of the cases scatter around a common ``s0^2``
  as a scaled inverse chi-square on ``d0`` degrees of freedom. Then ``s2 / s0^2`` follows an F
  distribution on ``(d, d0)`` degrees of freedom, and ``d0`` and ``s0^2`` are estimated from the moments
  of ``log s2`` over all cases (:func:`fit_prior`).
* Each case's variance is shrunk towards the prior, ``(d0 s0^2 + d s2) / (d0 + d)``, and its t-statistic
  has ``d0 + d`` degrees of freedom (:func:`moderate`). The prior weighs by how alike the cases really
  are: when their variances differ far more than sampling explains (a few noisy cases, frameworks of
  different stability), ``d0`` comes out small and each case keeps mostly its own variance; when they
  are alike, ``d0`` is large and the critical value drops towards the normal one.

``d0`` is capped at the total degrees of freedom of the cases the prior was fitted on: the common
variance cannot be known more precisely than by pooling every case, so a case is never credited with
more information than the run holds. Fewer than :data:`MIN_PRIOR_CASES` cases give no prior (their
scatter says too little about ``d0``): the plain t-test is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import special as spf
from scipy import stats as sps

MIN_PRIOR_CASES = 5
OUTLIER_P = 0.01  # a case's variance this improbable under the prior is not shrunk


@dataclass(frozen=True)
class VariancePrior:
    """The fitted prior of the between-round variance (of log round medians) across cases."""

    df: float  # d0: how many degrees of freedom the prior is worth
    variance: float  # s0^2
    cases: int  # how many cases it was fitted on

    def admits(self, variance: float, df: int) -> bool:
        """False when ``variance`` is too large to come from this prior: under the model ``variance / s0^2``
        follows F(df, d0), and its upper tail probability is below :data:`OUTLIER_P`."""
        return bool(sps.f.sf(variance / self.variance, df, self.df) >= OUTLIER_P)


def _trigamma_inverse(y: float) -> float:
    """The x > 0 with trigamma(x) = y (trigamma falls from +inf to 0 on x > 0, so the root is unique).
    trigamma(x) < 1 / (x - 1) for x > 1 brackets it below 2 / y + 2."""
    return float(optimize.brentq(lambda x: float(spf.polygamma(1, x)) - y, 1e-8, 2.0 / y + 2.0,
                                 xtol=1e-12, rtol=1e-10))


def _moment_fit(s2: np.ndarray, d: np.ndarray) -> VariancePrior:
    """Smyth's moment estimate of ``(d0, s0^2)`` (limma's ``fitFDist``), ``d0`` capped (module docstring)."""
    # log s2 = log sigma^2 + log(chi2_d / d): centre each on its expectation, then its variance beyond
    # what sampling alone gives (trigamma(d / 2)) is the variance of log sigma^2 across cases.
    e = np.log(s2) - spf.digamma(d / 2) + np.log(d / 2)
    e_mean = float(e.mean())
    excess = float(e.var(ddof=1) - np.mean(spf.polygamma(1, d / 2)))
    d0 = min(2.0 * _trigamma_inverse(excess) if excess > 0 else math.inf, float(d.sum()))
    s0_sq = math.exp(e_mean + spf.digamma(d0 / 2) - math.log(d0 / 2))
    return VariancePrior(df=d0, variance=s0_sq, cases=int(s2.size))


def fit_prior(variances: Sequence[float], dfs: Sequence[int]) -> VariancePrior | None:
    """The prior of the cases' variances, from their sample variances and degrees of freedom; None when
    fewer than :data:`MIN_PRIOR_CASES` cases have a positive variance (an exactly zero variance carries no
    information on the scale).

    Fitted twice: once on all cases, then again without the cases whose variance the first fit calls an
    outlier (:meth:`VariancePrior.admits`), so that a few noisy cases neither inflate the prior's scale
    nor lower its weight for the others; this is a simple form of limma's robust fit (Phipson et al.,
    *Robust hyperparameter estimation protects against hypervariable genes*, Ann. Appl. Stat. 10, 2016).
    """
    s2 = np.asarray(variances, dtype=float)
    d = np.asarray(dfs, dtype=float)
    keep = (s2 > 0) & np.isfinite(s2) & (d > 0)
    s2, d = s2[keep], d[keep]
    if s2.size < MIN_PRIOR_CASES:
        return None
    first = _moment_fit(s2, d)
    typical = np.array([first.admits(float(v), int(k)) for v, k in zip(s2, d, strict=True)])
    if typical.all() or typical.sum() < MIN_PRIOR_CASES:
        return first
    return _moment_fit(s2[typical], d[typical])


def moderate(variance: float, df: int, prior: VariancePrior | None) -> tuple[float, float]:
    """``(posterior variance, degrees of freedom)`` of one case: its own variance shrunk towards the
    prior, or unchanged without a prior or when the prior does not admit it (an outlier: a noisy case
    whose variance the prior would understate keeps its own, and its own degrees of freedom)."""
    if prior is None or not prior.admits(variance, df):
        return variance, float(df)
    total = prior.df + df
    return (prior.df * prior.variance + df * variance) / total, total
