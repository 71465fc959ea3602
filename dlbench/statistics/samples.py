"""Statistics on raw timing samples: small pure functions, tested on synthetic data with known answers.

The median is the headline (on shared machines the mean is dragged by preemptions); its confidence
interval is distribution-free, from the binomial distribution of order statistics, as in asv.

A case measured in several **rounds** (separately launched worker processes) has two levels of noise:
samples within a process, and the luck each process draws (memory layout, core, cache and frequency
state, neighbours). Only the round level tells how far another run would land, so with two rounds or
more the headline and its interval come from the round medians (:mod:`dlbench.statistics.rounds`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

NOISY_IQR_FRACTION = 0.10  # hyperfine/asv-style warning threshold: IQR above 10% of the median


@dataclass(frozen=True)
class Summary:
    """Summary statistics of per-iteration times, in milliseconds."""

    n: int
    median: float
    iqr: float
    ci_low: float
    ci_high: float
    mean: float
    std: float
    min: float
    max: float
    rounds: int = 1  # worker processes the samples came from
    round_cv: float | None = None  # coefficient of variation of the round medians (2 rounds or more)

    @property
    def noisy(self) -> bool:
        return self.median > 0 and self.iqr / self.median > NOISY_IQR_FRACTION

    @property
    def rel_ci_halfwidth(self) -> float:
        """Half the width of the median's confidence interval relative to the median."""
        return (self.ci_high - self.ci_low) / (2 * self.median) if self.median > 0 else float("inf")

    def to_dict(self) -> dict[str, float | int | bool]:
        data: dict[str, float | int | bool] = dict(asdict(self))
        data["noisy"] = self.noisy
        return data


def median_ci(samples: Sequence[float] | np.ndarray[Any, Any], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    The number B of samples below the true median is Binomial(n, 1/2). The interval between the order
    statistics x(j+1) and x(n-j) (1-based; j values cut from each end) covers the median exactly when at
    least j+1 samples lie below it and at least j+1 above: with probability P(j+1 <= B <= n-j-1). We take
    the narrowest such symmetric pair whose coverage reaches ``confidence``; it is the interval of
    ``scipy.stats.quantile_test(...).confidence_interval()`` wherever scipy gives one. With too few
    samples for that (n < 6 at 95%) the full range is returned, whose coverage 1 - 2^(1-n) is then the
    best available (0.5 at n = 2, 0.9375 at n = 5).
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n == 0:
        raise ValueError("no samples")
    cut = order_statistic_cut(n, confidence)
    return float(x[cut]), float(x[n - 1 - cut])


@functools.lru_cache(maxsize=4096)
def order_statistic_cut(n: int, confidence: float) -> int:
    """How many order statistics :func:`median_ci` cuts from each end of ``n`` sorted samples.

    Cached: it depends on ``n`` and ``confidence`` only, and compare and adaptive stopping ask for the
    same few sizes thousands of times.
    """
    if n < 2:
        return 0
    # j = number of order statistics cut from each end; coverage(j) = P(j + 1 <= B <= n - j - 1) = 1 - 2 P(B <= j)
    # for B ~ Binomial(n, 1/2), falling in j. Exact integer arithmetic rather than scipy: the adaptive stopping
    # rule runs this inside every worker, and importing scipy.stats would cost each worker a noticeable start-up.
    total, below, term, cut = 1 << n, 0, 1, 0  # below = 2^n P(B <= j), term = C(n, j)
    for j in range(n // 2):
        below += term
        if (total - 2 * below) / total < confidence:
            break
        cut = j
        term = term * (n - j) // (j + 1)
    return cut


def _coverage(n: int, j: int) -> float:
    """P(j + 1 <= B <= n - j - 1) for B ~ Binomial(n, 1/2), exactly (then rounded once to a float)."""
    total = 1 << n
    below = sum(math.comb(n, i) for i in range(j + 1))  # 2^n P(B <= j)
    return (total - 2 * below) / total


def median_ci_coverage(n: int, confidence: float = 0.95) -> float:
    """The exact probability that :func:`median_ci` of ``n`` samples from a continuous distribution covers
    the true median (it depends on ``n`` only, not on the distribution)."""
    if n < 2:
        return 0.0
    return _coverage(n, order_statistic_cut(n, confidence))


def summarize(samples_ms: Sequence[float] | np.ndarray[Any, Any], confidence: float = 0.95) -> Summary:
    x = np.asarray(samples_ms, dtype=float)
    if x.size == 0:
        raise ValueError("no samples")
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    low, high = median_ci(x, confidence)
    return Summary(
        n=int(x.size),
        median=float(med),
        iqr=float(q3 - q1),
        ci_low=low,
        ci_high=high,
        mean=float(x.mean()),
        std=float(x.std(ddof=1)) if x.size > 1 else 0.0,
        min=float(x.min()),
        max=float(x.max()),
    )

