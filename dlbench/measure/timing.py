"""Blocked, synchronised timing with adaptive stopping (the protocol of ``docs/measurement.md``).

1. The first call (with any tracing or compilation done by ``prepare``) is timed on its own.
2. Warm-up runs until ``warmup_s`` has passed; its times size the blocks.
3. Each sample is one block of ``k`` iterations, each ended by a sync, divided by ``k``; ``k`` is chosen so
   that a block lasts at least ``min_block_s`` (timer and sync overhead become negligible).
4. Sampling stops once ``min_samples`` and ``min_time_s`` are reached and the median's confidence
   interval is within ``target_rel_ci``, or when the case's budget (``max_time_s``, ``max_samples``) is spent.

We sync after every iteration rather than once per block: it measures the latency of a pass (the study's
"forward time"), costs microseconds, and keeps asynchronous frameworks (JAX dispatches asynchronously even on
CPU) from overlapping iterations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from dlbench.errors import validation_message
from dlbench.statistics.samples import summarize

ABSOLUTE_MIN_SAMPLES = 3  # fewer cannot give a median and an IQR worth printing
MAX_REPEATS = 100  # rounds per case; more is a typo, not a plan


# Bounds of every measurement setting. Each is far from any sensible value; they exist so that NaN, infinity,
# zero (a zero warm-up divides by zero) or a typo of a few orders of magnitude is refused when a suite or the
# command line is read, not discovered hours into a sweep.
MAX_SECONDS = 7 * 24 * 3600.0  # a week: no single case or budget is meant to take longer
MAX_SAMPLE_COUNT = 1_000_000
Seconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_SECONDS)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0, le=MAX_SECONDS)]
SampleCount = Annotated[int, msgspec.Meta(ge=ABSOLUTE_MIN_SAMPLES, le=MAX_SAMPLE_COUNT)]


class MeasureSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The fields of :class:`MeasureConfig` and their allowed ranges, without the checks on construction."""

    warmup_s: Seconds = 0.2
    min_warmup: Annotated[int, msgspec.Meta(ge=1, le=MAX_SAMPLE_COUNT)] = 1
    min_block_s: Seconds = 0.02
    min_samples: SampleCount = 7
    max_samples: SampleCount = 200
    min_time_s: Seconds = 0.5
    max_time_s: Seconds = 10.0
    target_rel_ci: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.02
    timeout_s: PositiveSeconds = 900.0  # per case, enforced by the parent process
    repeats: Annotated[int, msgspec.Meta(ge=1, le=MAX_REPEATS)] = 1  # rounds: worker processes per case (``--repeat``)


class MeasureConfig(MeasureSettings, frozen=True):
    """How long and how precisely to measure each case. A suite's ``[measure]`` table sets these.

    Every construction is checked against the ranges of :class:`MeasureSettings` (finite, in range, the
    right type), so a suite file, a command-line option and a stored record are all validated the same way:
    a bad value raises ValueError naming the field."""

    def __post_init__(self) -> None:
        try:
            msgspec.convert(msgspec.to_builtins(self), MeasureSettings)
        except msgspec.ValidationError as exc:
            raise ValueError(validation_message(exc)) from None
        if self.max_samples < self.min_samples:
            raise ValueError("max_samples must be at least min_samples")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data


@dataclass(frozen=True)
class Timing:
    first_call_ms: float
    samples_ms: tuple[float, ...]
    iterations_per_sample: int
    warmup_iterations: int
    cpu_per_wall: float


Clock = Callable[[], int]


def _run_once(fn: Callable[[], Any], sync: Callable[[Any], None]) -> None:
    sync(fn())


def budget_spent(samples_ms: list[float], elapsed_s: float, config: MeasureConfig) -> bool:
    """The case's sampling budget is spent: it stops whatever the other rules say."""
    n = len(samples_ms)
    return n >= config.max_samples or (elapsed_s >= config.max_time_s and n >= ABSOLUTE_MIN_SAMPLES)


def should_stop(samples_ms: list[float], elapsed_s: float, config: MeasureConfig) -> bool:
    """The adaptive stopping rule, separate so that it can be tested on synthetic samples."""
    n = len(samples_ms)
    if budget_spent(samples_ms, elapsed_s, config):
        return True
    if n < config.min_samples or elapsed_s < config.min_time_s:
        return False
    return summarize(samples_ms).rel_ci_halfwidth <= config.target_rel_ci


def block_size(iteration_s: float, config: MeasureConfig) -> int:
    if iteration_s <= 0:
        return 1000
    return max(1, math.ceil(config.min_block_s / iteration_s))


def measure(
    prepare: Callable[[], Callable[[], Any]],
    sync: Callable[[Any], None],
    config: MeasureConfig,
    clock: Clock = time.perf_counter_ns,
    cpu_clock: Callable[[], float] = time.process_time,
    between_samples: Callable[[bool], bool] | None = None,
) -> Timing:
    """Time one pass: ``prepare()`` returns the callable to time; ``sync`` waits for its result.

    ``between_samples``, if given, is called after every sample until the budget is spent: a worker that
    takes turns with others (:mod:`dlbench.process.turns`) lets them run there. It gets whether this case's
    own stopping rule is satisfied and returns whether to stop, so that workers taking turns stop together
    (the budget, ``max_samples`` and ``max_time_s``, still ends a case on its own). The time spent in it is
    not this case's: the time budgets and ``cpu_per_wall`` count the case's own time only.
    """
    start = clock()
    fn = prepare()
    _run_once(fn, sync)
    first_call_ms = (clock() - start) / 1e6

    warm_start = clock()
    warmup = 0
    while warmup < config.min_warmup or (clock() - warm_start) / 1e9 < config.warmup_s:
        _run_once(fn, sync)
        warmup += 1
    per_iteration_s = (clock() - warm_start) / 1e9 / warmup
    k = block_size(per_iteration_s, config)

    samples: list[float] = []
    sample_start = clock()
    cpu_start = cpu_clock()
    away_ns = 0  # time spent in between_samples: the other workers' turns
    while True:
        t0 = clock()
        for _ in range(k):
            _run_once(fn, sync)
        samples.append((clock() - t0) / 1e6 / k)
        own_s = (clock() - sample_start - away_ns) / 1e9
        ready = should_stop(samples, own_s, config)
        if between_samples is None or budget_spent(samples, own_s, config):
            if ready:
                break
            continue
        left = clock()
        stop = between_samples(ready)
        away_ns += clock() - left
        if stop:
            break
    wall_s = (clock() - sample_start - away_ns) / 1e9
    cpu_per_wall = (cpu_clock() - cpu_start) / wall_s if wall_s > 0 else 0.0
    return Timing(first_call_ms, tuple(samples), k, warmup, cpu_per_wall)
