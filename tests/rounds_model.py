"""A two-level noise model of timings for the round-level statistics tests and benchmarks.

Each round is one worker process: it draws a process-level offset (log-normal, ``process_sigma``: memory
layout, core, frequency state, neighbours of the moment), then its per-iteration samples carry the
sample-level noise of :func:`tests.regress_fixtures.noisy_samples` (log-normal jitter plus preemption
outliers). A test on the samples of one process per side sees only the second level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlbench.regress.verdict import REGRESSED, Policy, classify_ratio
from dlbench.statistics.significance import round_prior, round_test
from tests.regress_fixtures import noisy_samples

PROCESS_SIGMA = 0.02  # process-to-process spread of a round's median, on a log scale
SAMPLE_SIGMA = 0.05
OUTLIERS = 0.05


def draw_rounds(rng: np.random.Generator, rounds: int, median: float, process_sigma: float = PROCESS_SIGMA,
                samples: tuple[int, int] = (10, 30)) -> list[list[float]]:
    """``rounds`` rounds of 10-30 samples each around ``median``."""
    found = []
    for _ in range(rounds):
        offset = float(np.exp(rng.normal(0.0, process_sigma)))
        n = int(rng.integers(samples[0], samples[1] + 1))
        found.append(noisy_samples(rng, n, median * offset, SAMPLE_SIGMA, OUTLIERS))
    return found


# A run of many cases, for the across-case (moderated) test: every case has its own process spread, drawn
# log-uniformly in CASE_SIGMAS; a few noisy cases (NOISY_SHARE of them) have NOISY_FACTOR times more. The
# process offsets are heavy-tailed: Student t with 3 degrees of freedom scaled to the case's spread as
# standard deviation (an occasional round lands far off, as when a neighbour bursts).
CASE_SIGMAS = (0.01, 0.03)
NOISY_SHARE = 0.1
NOISY_FACTOR = 4.0
TAIL_DF = 3


def case_sigmas(rng: np.random.Generator, cases: int) -> tuple[np.ndarray, np.ndarray]:
    """``(process spread of every case, which cases are the noisy ones)``."""
    low, high = np.log(CASE_SIGMAS)
    sigmas = np.exp(rng.uniform(low, high, cases))
    noisy = rng.random(cases) < NOISY_SHARE
    return np.where(noisy, sigmas * NOISY_FACTOR, sigmas), noisy


def heavy_offsets(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Log process offsets with standard deviation ``sigma`` and Student-t (3 df) tails."""
    return np.asarray(sigma * rng.standard_t(TAIL_DF, size) / np.sqrt(TAIL_DF / (TAIL_DF - 2)))


def draw_case_pair(rng: np.random.Generator, rounds: int, sigma: float, slowdown: float = 1.0,
                   shared_sigma: float = 0.0, median: float = 10.0,
                   samples: tuple[int, int] = (10, 30)) -> tuple[list[list[float]], list[list[float]]]:
    """Baseline and current rounds of one case, the current ``slowdown`` times slower.

    ``shared_sigma`` > 0 models one interleaved A/B run: round ``r`` of both sides ran back to back, so a
    state of the machine of that moment (heavy-tailed too) slows both alike, on top of each process's own
    offset."""
    shared = heavy_offsets(rng, rounds, shared_sigma) if shared_sigma > 0 else np.zeros(rounds)
    sides = []
    for centre in (median, median * slowdown):
        offsets = np.exp(shared + heavy_offsets(rng, rounds, sigma))
        sizes = rng.integers(samples[0], samples[1] + 1, rounds)
        sides.append([noisy_samples(rng, int(n), centre * float(o), SAMPLE_SIGMA, OUTLIERS)
                      for n, o in zip(sizes, offsets, strict=True)])
    return sides[0], sides[1]


# A/B runs whose sides take turns sample by sample (--interleave samples): the machine's speed drifts
# during a round (an AR(1) process of the log speed, DRIFT_SIGMA stationary spread, DRIFT_RHO from one
# sample to the next), and sample i of the head is taken right after sample i of the base, under a drift
# that moved on by only PAIR_RHO. On top, each process keeps its own offset (the case's spread).
DRIFT_SIGMA = 0.20
DRIFT_RHO = 0.7
PAIR_RHO = 0.97


def drift(rng: np.random.Generator, n: int, sigma: float, rho: float) -> np.ndarray:
    """A stationary AR(1) series of ``n`` log speeds: spread ``sigma``, lag-one correlation ``rho``."""
    steps = rng.normal(0.0, sigma * np.sqrt(1.0 - rho**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sigma)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + steps[i]
    return out


def draw_turns_pair(rng: np.random.Generator, rounds: int, sigma: float, slowdown: float = 1.0,
                    median: float = 10.0, samples: tuple[int, int] = (10, 30),
                    drift_sigma: float = DRIFT_SIGMA) -> tuple[list[list[float]], list[list[float]]]:
    """Baseline and current rounds of one case of an A/B run that took turns: as many samples per round
    on both sides, each pair under nearly the same drift (see :data:`DRIFT_SIGMA`)."""
    base_rounds, cur_rounds = [], []
    for _ in range(rounds):
        n = int(rng.integers(samples[0], samples[1] + 1))
        moment = drift(rng, n, drift_sigma, DRIFT_RHO)
        later = PAIR_RHO * moment + rng.normal(0.0, drift_sigma * np.sqrt(1.0 - PAIR_RHO**2), n)
        offsets = np.exp(heavy_offsets(rng, 2, sigma))
        for rounds_of, centre, offset, state in ((base_rounds, median, offsets[0], moment),
                                                 (cur_rounds, median * slowdown, offsets[1], later)):
            jitter = np.asarray(noisy_samples(rng, n, 1.0, SAMPLE_SIGMA, OUTLIERS))
            rounds_of.append([float(v) for v in centre * offset * np.exp(state) * jitter])
    return base_rounds, cur_rounds


Rounds = list[list[float]]


def regressed_flags(pairs: Sequence[tuple[Rounds, Rounds]], policy: Policy, moderated: bool,
                    paired: bool = False, by_sample: bool = False) -> list[bool]:
    """compare's timing decision (``regressed`` or not) for every case of one comparison, the prior
    fitted across them when ``moderated``: the code path of compare_runs without the display statistics."""
    prior = round_prior(pairs, paired, by_sample) if moderated else None
    flags = []
    for base, cur in pairs:
        ratio, _, _, p_value = round_test(base, cur, prior=prior, paired=paired, by_sample=by_sample)
        flags.append(classify_ratio(ratio, p_value < policy.alpha, policy.threshold) == REGRESSED)
    return flags
