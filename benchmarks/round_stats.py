"""Round-level statistics by simulation: interval coverage, false alarms and power of compare's verdicts.

Noise model (tests/rounds_model.py): every round is one worker process with a log-normal process offset
(``--process-sigma``, 1-3% is typical of a shared machine) and per-iteration samples with 5% log-normal
jitter plus 5% preemption outliers, 10-30 samples per round. Printed:

1. coverage of the nominal 95% interval of a case's headline (the typical round median) by the t-interval
   on log round medians that dlbench uses, next to a seeded hierarchical bootstrap (rounds, then samples),
   and next to the one-round order-statistic interval, which ignores the process level;
2. the share of pairs that ``compare`` calls ``regressed`` with identical code (A/A), and with a 10%
   slow-down (power), at threshold 5% and alpha 0.01, for the plain round-level t-test of one case on its
   own (``compare --round-test t``) and for the sample-level Mann-Whitney test on one round per side. The
   default round-level test borrows strength across the cases of a comparison; benchmarks/round_power.py
   measures it on a run of many cases.

    python benchmarks/round_stats.py [--trials 2000]
"""

from __future__ import annotations

import argparse

import numpy as np

from dlbench.regress.verdict import REGRESSED, Policy, classify_ratio
from dlbench.statistics.rounds import rounds_center_ci
from dlbench.statistics.samples import median_ci
from dlbench.statistics.significance import rounds_change
from tests.rounds_model import draw_rounds


def bootstrap_ci(rounds: list[list[float]], rng: np.random.Generator, reps: int = 200) -> tuple[float, float]:
    """Percentile interval of the geometric mean of round medians, resampling rounds then samples."""
    arrays = [np.asarray(r) for r in rounds]
    stats = np.empty(reps)
    for i in range(reps):
        picked = rng.integers(0, len(arrays), len(arrays))
        medians = [np.median(rng.choice(arrays[j], arrays[j].size)) for j in picked]
        stats[i] = np.exp(np.mean(np.log(medians)))
    low, high = np.percentile(stats, [2.5, 97.5])
    return float(low), float(high)


def coverage(trials: int, rounds: int, sigma: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """(t-interval, bootstrap, one-round order statistics) coverage of the true typical time 10.0.

    The true value is the median of a round's median over processes; with log-symmetric process offsets
    and the same sample noise in every round it is 10 x the median of the sample noise's median, estimated
    here once from many rounds."""
    truth = float(np.exp(np.median(np.log([np.median(r) for r in draw_rounds(rng, 20000, 10.0, sigma)]))))
    t_hits = boot_hits = one_hits = 0
    boot_trials = min(trials, 200)
    for i in range(trials):
        data = draw_rounds(rng, rounds, 10.0, sigma)
        _, low, high = rounds_center_ci([float(np.median(r)) for r in data])
        t_hits += low <= truth <= high
        one_low, one_high = median_ci(data[0])
        one_hits += one_low <= truth <= one_high
        if i < boot_trials:
            b_low, b_high = bootstrap_ci(data, rng)
            boot_hits += b_low <= truth <= b_high
    return t_hits / trials, boot_hits / boot_trials, one_hits / trials


def verdict_rates(trials: int, rounds: int, sigma: float, slowdown: float,
                  rng: np.random.Generator) -> tuple[float, float]:
    """Share of pairs judged regressed: (round-level with ``rounds`` each, sample-level with one each)."""
    policy = Policy()
    round_level = sample_level = 0
    for _ in range(trials):
        base = draw_rounds(rng, rounds, 10.0, sigma)
        cur = draw_rounds(rng, rounds, 10.0 * slowdown, sigma)
        change = rounds_change(base, cur, policy.alpha)
        round_level += classify_ratio(change.ratio, change.significant, policy.threshold) == REGRESSED
        single = rounds_change(base[:1], cur[:1], policy.alpha)
        sample_level += classify_ratio(single.ratio, single.significant, policy.threshold) == REGRESSED
    return round_level / trials, sample_level / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(2013)
    print("1. coverage of the nominal 95% interval of the headline")
    print(f"{'rounds':>6} {'sigma':>6} {'t on rounds':>12} {'bootstrap':>10} {'one round':>10}")
    for rounds in (2, 3, 5, 10):
        for sigma in (0.01, 0.03):
            t_cov, boot_cov, one_cov = coverage(args.trials, rounds, sigma, rng)
            print(f"{rounds:>6} {sigma:>6.0%} {t_cov:>12.3f} {boot_cov:>10.3f} {one_cov:>10.3f}")
    print("\n2. share of pairs judged 'regressed' (threshold 5%, alpha 0.01)")
    print(f"{'rounds':>6} {'sigma':>6} {'A/A rounds':>11} {'A/A 1 round':>12} {'10% rounds':>11} {'10% 1 round':>12}")
    for rounds in (3, 5, 10):
        for sigma in (0.01, 0.02, 0.03):
            aa_r, aa_1 = verdict_rates(args.trials, rounds, sigma, 1.0, rng)
            p_r, p_1 = verdict_rates(args.trials, rounds, sigma, 1.10, rng)
            print(f"{rounds:>6} {sigma:>6.0%} {aa_r:>11.4f} {aa_1:>12.4f} {p_r:>11.3f} {p_1:>12.3f}")


if __name__ == "__main__":
    main()
