"""The run loop: group cases per worker, order the rounds, skip what is already stored, run, store each
result at once."""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import groupby
from typing import Any

import msgspec

from dlbench.process.placement import cores_for
from dlbench.record import ControlReading, RunConfig
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


@dataclass(frozen=True)
class Step:
    """One worker launch of the run: a group's pending cases, in one environment, for one round."""

    round: int  # 1-based
    environment: str  # "" for the interpreter running dlbench
    worker: WorkerKey
    cases: tuple[Case, ...]


def interleave(groups: list[tuple[WorkerKey, tuple[Case, ...]]], environments: list[str],
               repeats: int) -> list[Step]:
    """The order of worker launches: round 1 of every group, then round 2, and so on, so that a slow drift
    of the machine spreads over all cases instead of landing on some; within a round each group runs in
    every environment back to back (A/B: base then head, then head then base in the next round), so the
    two sides of a comparison are measured minutes apart, with the order alternating."""
    steps: list[Step] = []
    for number in range(1, repeats + 1):
        order = environments if number % 2 else environments[::-1]
        for worker, members in groups:
            steps.extend(Step(number, env, worker, members) for env in order)
    return steps


@dataclass
class RunLoop:
    """Runs the pending rounds of a run into its store; ``on_result`` feeds the progress display.

    ``executors`` maps each environment name ("" for an ordinary run) to the executor that launches its
    workers (another interpreter per ``--python`` environment).
    """

    store: RunStore
    executors: dict[str, Executor]
    config: RunConfig  # the jobs' measurement settings and seed
    on_result: Callable[[CaseResult], None] | None = None
    control: Callable[[int], ControlReading] | None = None  # measures the drift control for a round

    def _todo(self, step: Step) -> tuple[Case, ...]:
        repeats = self.config.measure.repeats
        return tuple(c for c in step.cases if self.store.rounds_done(step.environment, c.key, repeats) < step.round)

    def pending(self, cases: Iterable[Case]) -> list[Step]:
        """Every (round, environment, group) still to measure: resume completes missing rounds."""
        steps = []
        for step in interleave(group_cases(cases), list(self.executors), self.config.measure.repeats):
            todo = self._todo(step)
            if todo:
                steps.append(replace(step, cases=todo))
        return steps

    def pending_count(self, cases: Iterable[Case]) -> int:
        return sum(len(step.cases) for step in self.pending(cases))

    def run(self, cases: list[Case]) -> None:
        controlled: set[int] = set()
        for step in self.pending(cases):
            todo = self._todo(step)  # a round that failed earlier in this run ends the case's rounds
            if not todo:
                continue
            if self.control is not None and step.round not in controlled:
                controlled.add(step.round)  # once per round, before its first worker, pinned like the cases
                self.store.add_control(self.control(step.round))
            job = WorkerJob(key=step.worker, cores=cores_for(step.worker.threads), cases=todo,
                            measure=self.config.measure, seed=self.config.seed, gpu=self.config.suite.gpu)
            env = step.environment
            self.executors[env].run(job, functools.partial(self._record, env), functools.partial(self._runtime, env))

    def _record(self, environment: str, result: CaseResult) -> None:
        result = msgspec.structs.replace(result, environment=environment, host=result.host or HOSTNAME)
        self.store.add_round(result)
        if self.on_result is not None:
            self.on_result(result)

    def _runtime(self, environment: str, worker: WorkerKey, info: dict[str, Any]) -> None:
        self.store.set_framework_info(worker, info, environment)
