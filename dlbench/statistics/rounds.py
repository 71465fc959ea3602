"""Statistics of a case measured in several rounds (separately launched worker processes).

Two levels of noise: samples within a process, and the luck each process draws. A test or interval on
the samples of one process sees only the first; these functions work on the round medians, the level
that varies from one run to the next (Kalibera and Jones, *Rigorous Benchmarking in Reasonable Time*,
ISMM 2013: repeat at the highest level that varies). Kept apart from :mod:`dlbench.statistics.samples` because they
need scipy's t distribution, which the workers do not import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from scipy import stats as sps

from dlbench.statistics.samples import Summary, summarize


def round_medians(rounds: Sequence[Sequence[float]]) -> np.ndarray[Any, Any]:
    """The median of each non-empty round's samples."""
    medians = [float(np.median(r)) for r in rounds if len(r)]
    if not medians:
        raise ValueError("no samples")
    return np.asarray(medians, dtype=float)


def between_round_cv(medians: Sequence[float] | np.ndarray[Any, Any]) -> float | None:
    """Standard deviation of the round medians over their mean: how far one process lands from another.
    None with fewer than two rounds (nothing to compare)."""
    m = np.asarray(medians, dtype=float)
    if m.size < 2 or m.mean() <= 0:
        return None
    return float(m.std(ddof=1) / m.mean())


def rounds_center_ci(
    medians: Sequence[float] | np.ndarray[Any, Any], confidence: float = 0.95
) -> tuple[float, float, float]:
    """``(centre, low, high)`` of the typical round median, from two or more round medians.

    Model: log(round median) = log(true time) + process luck, the luck roughly normal (a product of many
    small factors). The centre is the geometric mean of the round medians and the interval Student's t on
    their logarithms with R - 1 degrees of freedom: the balanced two-level (mixed-model) analysis, in
    which the within-round noise enters through the round medians themselves. It is wide with few rounds
    (t = 12.7 at R = 2, 4.3 at R = 3), which is the honest price of few processes: a bootstrap over 3
    rounds would look narrower but cover far less often (benchmarks/round_stats.py measures both). The
    logarithm makes a slow-down additive and the spread of both sides of a comparison equal.
    """
    logs = np.log(np.asarray(medians, dtype=float))
    if logs.size < 2:
        raise ValueError("a round-level interval needs two rounds or more")
    centre = float(logs.mean())
    half = float(sps.t.ppf(0.5 + confidence / 2, logs.size - 1) * logs.std(ddof=1) / np.sqrt(logs.size))
    return float(np.exp(centre)), float(np.exp(centre - half)), float(np.exp(centre + half))


def summarize_rounds(rounds: Sequence[Sequence[float]], confidence: float = 0.95) -> Summary:
    """Summary of a case measured in one or more rounds.

    One round: :func:`summarize` (median and order-statistic interval of the samples; between-process
    variation is then not in the interval). Two or more: headline and interval from the round medians
    (:func:`rounds_center_ci`), the between-round CV alongside; IQR, mean, std, min and max describe all
    samples pooled.
    """
    non_empty = [r for r in rounds if len(r)]
    if len(non_empty) <= 1:
        return summarize(non_empty[0] if non_empty else [], confidence)
    pooled = summarize(np.concatenate([np.asarray(r, dtype=float) for r in non_empty]), confidence)
    medians = round_medians(non_empty)
    centre, low, high = rounds_center_ci(medians, confidence)
    return replace(pooled, median=centre, ci_low=low, ci_high=high, rounds=len(non_empty),
                   round_cv=between_round_cv(medians))
