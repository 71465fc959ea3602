"""Coverage of ``dlbench.statistics.samples.median_ci`` by simulation, n = 2..200, against the nominal level and scipy.

For every n, ``--trials`` seeded data sets are drawn from a skewed continuous distribution (log-normal,
true median 1); the script prints the simulated coverage next to the exact one (binomial law) and says
whether the interval equals ``scipy.stats.quantile_test(...).confidence_interval()`` wherever scipy gives
one. The unit test (tests/unit/test_stats.py) runs the same check with fewer trials.

    python benchmarks/median_ci_coverage.py [--trials 20000] [--confidence 0.95]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats as sps

from dlbench.statistics.samples import median_ci, median_ci_coverage

SHOWN = (2, 3, 5, 6, 8, 10, 15, 20, 30, 50, 75, 100, 150, 200)


def simulate(n: int, trials: int, confidence: float, rng: np.random.Generator) -> float:
    draws = rng.lognormal(0.0, 0.5, (trials, n))
    covered = sum(low <= 1.0 <= high for low, high in (median_ci(row, confidence) for row in draws))
    return covered / trials


def agrees_with_scipy(n: int, confidence: float, rng: np.random.Generator) -> str:
    x = rng.lognormal(0.0, 0.5, n)
    reference = sps.quantile_test(x, q=1.0, p=0.5).confidence_interval(confidence)
    if np.isnan(reference.low):
        return "scipy: none"
    return "same" if median_ci(x, confidence) == (reference.low, reference.high) else "DIFFERENT"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20000)
    parser.add_argument("--confidence", type=float, default=0.95)
    args = parser.parse_args()
    rng = np.random.default_rng(12)
    below, pooled, count, differ = [], 0.0, 0, 0
    print(f"{'n':>4} {'exact':>8} {'simulated':>10}  scipy")
    for n in range(2, 201):
        trials = args.trials if n in SHOWN else max(1000, args.trials // 10)
        simulated = simulate(n, trials, args.confidence, rng)
        exact = median_ci_coverage(n, args.confidence)
        scipy_check = agrees_with_scipy(n, args.confidence, rng)
        differ += scipy_check == "DIFFERENT"
        if exact < args.confidence:
            below.append(n)
        else:
            pooled += simulated
            count += 1
        if n in SHOWN:
            print(f"{n:>4} {exact:>8.4f} {simulated:>10.4f}  {scipy_check}  ({trials} trials)")
    print(f"n below the nominal {args.confidence:.0%} (too few samples, full range returned): {below}")
    print(f"mean simulated coverage over the other n: {pooled / count:.4f}; intervals differing from scipy: "
          f"{differ}")


if __name__ == "__main__":
    main()
