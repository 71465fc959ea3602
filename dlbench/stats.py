"""Statistics on raw timing samples: small pure functions, tested on synthetic data with known answers.

The median is the headline (on shared machines the mean is dragged by preemptions); its confidence
interval is distribution-free, from the binomial distribution of order statistics, as in asv.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

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

    The number of samples below the true median is Binomial(n, 1/2); the interval between the j-th and
    k-th order statistics covers the median with probability P(j <= B < k). We take the narrowest
    symmetric pair whose coverage reaches ``confidence``; with too few samples for that (n < 6 at 95%)
    the full range is returned, whose coverage 1 - 2^(1-n) is then the best available.
    """
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n == 0:
        raise ValueError("no samples")
    if n == 1:
        return float(x[0]), float(x[0])
    # j = number of order statistics cut from each end; coverage(j) = P(j <= B <= n - j - 1), falling in j
    j = np.arange(n // 2)
    coverage = sps.binom.cdf(n - j - 1, n, 0.5) - sps.binom.cdf(j - 1, n, 0.5)
    reaching = np.flatnonzero(coverage >= confidence)
    best = int(reaching[-1]) if reaching.size else 0
    return float(x[best]), float(x[n - 1 - best])


def summarize(samples_ms: Sequence[float], confidence: float = 0.95) -> Summary:
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
