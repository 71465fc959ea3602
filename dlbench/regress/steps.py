"""Find the runs where a case's timing changed level: a penalised piecewise-constant fit (asv's approach).

The series of per-run medians is modelled as constant levels plus noise. Among all ways to cut it into
segments we choose the one minimising

    sum over segments of  sum_i |log y_i - median of the segment's log y|   +   penalty * (segments)

solved exactly by dynamic programming ("optimal partitioning", O(n^2) segment costs; each cost comes from
a running median kept in two heaps, so the whole fit is O(n^2 log n) - instant for hundreds of runs).
Why these choices:

* **log scale**: a step is a *relative* change (10% slower), whatever the case's absolute time.
* **L1 around the median** (not squared error): one run disturbed by a noisy neighbour moves a segment's
  level little and rarely earns a segment of its own; asv uses an L1 cost for the same reason.
* **penalty = GAMMA * sigma * ln(n)**: the price of one more segment scales with the noise (sigma, a robust
  estimate from the differences between consecutive runs, which a few steps barely disturb: the median of
  |differences|, scaled to a standard deviation) and grows slowly with the series length, as in BIC-like
  criteria, so long noisy series do not sprout steps. sigma is floored at ``MIN_NOISE`` (1%) so that a
  suspiciously quiet series does not turn every 0.5% wobble into a step.
* **a level lasts at least two runs** (``min_size=2``): a single run slowed down as a whole by a noisy
  neighbour is an outlier, not a step. The price is that a step at the newest run shows up one run
  later; judging the newest run alone is ``dlbench compare``'s job.

GAMMA and ``min_size`` were chosen on synthetic 10-100-run series (3% log-normal noise, a step of 15% in
the middle; tests/unit/test_history_steps.py keeps them honest): with GAMMA = 3 pure noise yields a false
step in under 1% of series, or about 5% when 1 run in 20 is an outlier 20-60% slower, while the 15% step
is found at the right run (+-1) in over 95% of 30-run series.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

GAMMA = 3.0
MIN_NOISE = 0.01
MAD_TO_SIGMA = 1.4826  # median absolute deviation of a normal sample -> its standard deviation


@dataclass(frozen=True)
class Segment:
    """Points ``start`` .. ``end - 1`` of the series share one level (the median of their values)."""

    start: int
    end: int
    level: float


@dataclass(frozen=True)
class Step:
    """The level changes at point ``index`` (the first point of the new level)."""

    index: int
    before: float
    after: float

    @property
    def change(self) -> float:
        """Relative change of the level: +0.15 is 15% slower."""
        return self.after / self.before - 1.0


def noise_scale(logs: Sequence[float]) -> float:
    """Robust standard deviation of the noise around the levels, from consecutive differences."""
    if len(logs) < 2:
        return MIN_NOISE
    diffs = np.abs(np.diff(np.asarray(logs, dtype=float)))
    return max(MIN_NOISE, MAD_TO_SIGMA * float(np.median(diffs)) / math.sqrt(2.0))


def default_penalty(logs: Sequence[float]) -> float:
    return GAMMA * noise_scale(logs) * math.log(max(len(logs), 2))


class _RunningMedianCost:
    """Sum of absolute deviations from the median of a growing set, updated in O(log n) per value."""

    def __init__(self) -> None:
        self._low: list[float] = []  # max-heap (negated) of the smaller half, holds the median
        self._high: list[float] = []  # min-heap of the larger half
        self._low_sum = 0.0
        self._high_sum = 0.0

    def add(self, value: float) -> None:
        if self._low and value > -self._low[0]:
            heapq.heappush(self._high, value)
            self._high_sum += value
        else:
            heapq.heappush(self._low, -value)
            self._low_sum += value
        if len(self._low) > len(self._high) + 1:
            moved = -heapq.heappop(self._low)
            self._low_sum -= moved
            heapq.heappush(self._high, moved)
            self._high_sum += moved
        elif len(self._high) > len(self._low):
            moved = heapq.heappop(self._high)
            self._high_sum -= moved
            heapq.heappush(self._low, -moved)
            self._low_sum += moved

    def cost(self) -> float:
        median = -self._low[0]
        return (self._high_sum - median * len(self._high)) + (median * len(self._low) - self._low_sum)


def segment_costs(logs: Sequence[float]) -> np.ndarray:
    """``costs[i, j]``: L1 deviation of points ``i .. j-1`` from their median (inf where j <= i)."""
    n = len(logs)
    costs = np.full((n, n + 1), np.inf)
    for start in range(n):
        running = _RunningMedianCost()
        for end in range(start + 1, n + 1):
            running.add(logs[end - 1])
            costs[start, end] = running.cost()
    return costs


def _cut_points(costs: np.ndarray, penalty: float, min_size: int) -> list[int]:
    """Optimal partitioning: the segment starts (after 0) of the cheapest penalised segmentation."""
    n = costs.shape[0]
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    previous = np.zeros(n + 1, dtype=int)
    for end in range(1, n + 1):
        if end < min_size:  # no segmentation of this prefix has every segment long enough
            if end == n:  # the whole series is shorter than one level: it is one level
                best[end], previous[end] = costs[0, end] + penalty, 0
            continue
        starts = np.arange(0, end - min_size + 1)  # best[] of too-short prefixes is inf: never chosen
        totals = best[starts] + costs[starts, end] + penalty
        choice = int(np.argmin(totals))
        best[end], previous[end] = totals[choice], int(starts[choice])
    cuts, end = [], n
    while end > 0:
        end = int(previous[end])
        if end > 0:
            cuts.append(end)
    return sorted(cuts)


def fit_levels(values: Sequence[float], penalty: float | None = None, min_size: int = 2) -> list[Segment]:
    """Cut a series of positive values into constant levels (see module docstring).

    ``penalty`` is in units of log-deviation (default :func:`default_penalty`); ``min_size`` is the
    fewest points a level may have (1 would let a single run, e.g. the newest, form a level of its own).
    """
    if not values:
        return []
    if min(values) <= 0:
        raise ValueError("step detection needs positive values")
    logs = [math.log(v) for v in values]
    chosen = default_penalty(logs) if penalty is None else penalty
    bounds = [0, *_cut_points(segment_costs(logs), chosen, max(1, min_size)), len(values)]
    return [
        Segment(start, end, float(np.median(values[start:end])))
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def steps_between(segments: Sequence[Segment]) -> list[Step]:
    """The change points of a segmentation, with the levels on either side."""
    return [Step(after.start, before.level, after.level) for before, after in itertools.pairwise(segments)]
