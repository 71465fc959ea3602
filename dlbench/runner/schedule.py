"""The run loop: group cases per worker, skip what is already stored, run, store each result at once."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import groupby

from dlbench.measure.timing import MeasureConfig
from dlbench.process.placement import cores_for
from dlbench.results import CaseResult
from dlbench.runner.isolate import Executor
from dlbench.runner.protocol import WorkerJob
from dlbench.spec import Case, WorkerKey
from dlbench.store import RunStore

HOSTNAME = socket.gethostname()  # every row names the machine that ran it (a fleet run mixes several)


def group_cases(cases: Iterable[Case]) -> list[tuple[WorkerKey, tuple[Case, ...]]]:
    """One group per worker key (framework, device, threads), in a stable order; cases keep suite order."""
    ordered = sorted(cases, key=WorkerKey.of)
    return [(key, tuple(members)) for key, members in groupby(ordered, key=WorkerKey.of)]


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
        for key, members in group_cases(self.pending(cases)):
            job = WorkerJob(key=key, cores=cores_for(key.threads), cases=members, measure=self.measure,
                            seed=self.seed)
            self.executor.run(job, self._record, self.store.set_framework_info)

    def _record(self, result: CaseResult) -> None:
        if not result.host:
            result = replace(result, host=HOSTNAME)
        self.store.add(result)
        if self.on_result is not None:
            self.on_result(result)
