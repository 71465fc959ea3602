"""A two-level noise model of timings for the round-level statistics tests and benchmarks.

Each round is one worker process: it draws a process-level offset (log-normal, ``process_sigma``: memory
layout, core, frequency state, neighbours of the moment), then its per-iteration samples carry the
sample-level noise of :func:`tests.regress_fixtures.noisy_samples` (log-normal jitter plus preemption
outliers). A test on the samples of one process per side sees only the second level.
"""

from __future__ import annotations

import numpy as np

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
