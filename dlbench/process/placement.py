"""Where a child runs: exactly N cores for N threads, and the thread variables that tell every runtime so.

A child gets the first N cores this process may use, and ``OMP_NUM_THREADS`` (and the other BLAS/OpenMP
variables) set to N *before* it starts: thread pools are sized once, when a library loads, so a change after
the import comes too late. The same rule serves ``run``, ``verify`` and ``calibrate``, so that "N threads"
means the same thing in all three.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")


@dataclass(frozen=True)
class Placement:
    """``threads`` threads on exactly these ``cores`` (one core per thread)."""

    threads: int
    cores: tuple[int, ...]

    def environment(self) -> dict[str, str]:
        """The thread variables a child must have in its environment from the start."""
        return {name: str(self.threads) for name in THREAD_ENV}


def available_cores() -> tuple[int, ...]:
    """The cores this process may run on (its affinity mask, which a CPU set or taskset may narrow)."""
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux: no affinity API, every core counts
        return tuple(range(os.cpu_count() or 1))


def cores_for(threads: int, allowed: Iterable[int] | None = None, reserve: int = 0) -> tuple[int, ...]:
    """The first ``threads`` cores this process may use: a child with N threads gets exactly N cores.

    ``reserve`` lowest cores are skipped whenever more than that many exist: on a Ray node they are left to
    Ray's own daemons, which would otherwise share a core with the measured worker. A local run reserves
    none (one group runs at a time and the parent only waits on a pipe).
    """
    cores = sorted(allowed) if allowed is not None else list(available_cores())
    if reserve and len(cores) > reserve:
        cores = cores[reserve:]
    if threads > len(cores):
        raise ValueError(f"{threads} threads requested but only {len(cores)} cores are available")
    return tuple(cores[:threads])


def place(threads: int, allowed: Iterable[int] | None = None) -> Placement:
    """The placement of a child with ``threads`` threads; ValueError when there are too few cores."""
    return Placement(threads, cores_for(threads, allowed))
