"""The run loop: group cases per worker, skip what is already stored, run, store each result at once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import groupby

from dlbench.measure.timing import MeasureConfig
from dlbench.results import CaseResult
from dlbench.runner.isolate import Executor
from dlbench.runner.protocol import WorkerJob
from dlbench.spec import Case, WorkerGroup
from dlbench.store import RunStore


def group_cases(cases: Iterable[Case]) -> list[WorkerGroup]:
    """One group per (framework, device, threads), in a stable order; cases inside keep suite order."""
    ordered = sorted(cases, key=lambda c: (c.framework, c.device, c.threads))
    return [
        WorkerGroup(framework, device, threads, tuple(members))
        for (framework, device, threads), members in groupby(
            ordered, key=lambda c: (c.framework, c.device, c.threads))
    ]


def cores_for(threads: int, allowed: Iterable[int] | None = None) -> tuple[int, ...]:
    """The first ``threads`` cores this process may use: a worker with N threads gets exactly N cores."""
    available = sorted(allowed if allowed is not None else os.sched_getaffinity(0))
    if threads > len(available):
        raise ValueError(f"{threads} threads requested but only {len(available)} cores are available")
    return tuple(available[:threads])


@dataclass
class RunLoop:
    """Runs the pending cases of a run into its store; ``on_result`` feeds the progress display."""

    store: RunStore
    executor: Executor
    measure: MeasureConfig
    seed: int = 0
    on_result: Callable[[CaseResult], None] | None = None

    def pending(self, cases: Iterable[Case]) -> list[Case]:
        done = self.store.done_keys()
        return [c for c in cases if c.key not in done]

    def run(self, cases: list[Case]) -> None:
        for group in group_cases(self.pending(cases)):
            job = WorkerJob(framework=group.framework, device=group.device, threads=group.threads,
                            cores=cores_for(group.threads), cases=group.cases, measure=self.measure,
                            seed=self.seed)
            self.executor.run(job, self._record, self.store.set_framework_info)

    def _record(self, result: CaseResult) -> None:
        self.store.add(result)
        if self.on_result is not None:
            self.on_result(result)
