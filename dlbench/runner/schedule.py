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

from dlbench.cases.spec import Case, WorkerKey
from dlbench.frameworks.registry import get_adapter
from dlbench.process.placement import cores_for
from dlbench.record.results import CaseResult
from dlbench.record.schema import SAMPLES, ControlReading, RunConfig
from dlbench.record.store import RunStore
from dlbench.runner.executor import (
    Executor,
    LocalExecutor,
    ResultSink,
    RuntimeSink,
    WorkerProcess,
    ahead_limit,
    run_side_by_side,
    start_ahead,
)
from dlbench.runner.protocol import WorkerJob

HOSTNAME = socket.gethostname()  # every row names the machine that ran it (a fleet run mixes several)


def worker_of(case: Case) -> WorkerKey:
    """The worker that runs ``case``: one per framework, device and thread count, and one more for each
    variant whose switch must be in the environment before the framework is imported (``Adapter.variant_env``:
    TensorFlow without oneDNN cannot share a process with TensorFlow with it)."""
    return WorkerKey.of(case, own_process=get_adapter(case.framework).own_process(case.variant))


def group_cases(cases: Iterable[Case]) -> list[tuple[WorkerKey, tuple[Case, ...]]]:
    """One group per worker key (framework, device, threads, process), in a stable order; cases keep suite
    order."""
    keyed = [(worker_of(case), case) for case in cases]
    keyed.sort(key=lambda pair: pair[0])
    return [(key, tuple(case for _, case in members)) for key, members in groupby(keyed, key=lambda pair: pair[0])]


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
    two sides of a comparison are measured minutes apart, with the order alternating. With ``interleave =
    "samples"`` those back-to-back steps run side by side instead (:meth:`RunLoop.batches`), the first of
    them taking the first turn."""
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
        batches = self.batches(self.pending(cases))
        ahead: dict[int, WorkerProcess] = {}  # batch index -> its worker, started ahead and waiting at its gate
        try:
            for index, batch in enumerate(batches):
                # a round that failed earlier in this run ends the case's rounds
                steps = [replace(step, cases=todo) for step in batch if (todo := self._todo(step))]
                if not steps:
                    continue
                number = steps[0].round
                if self.control is not None and number not in controlled:
                    controlled.add(number)  # once per round, before its first worker, pinned like the cases
                    self.store.add_control(self.control(number))
                if len(steps) == 1:
                    step = steps[0]
                    if index not in ahead:
                        ahead.update(self._start_ahead(batches, index))
                    started = ahead.pop(index, None)
                    if started is not None:
                        self._local(step.environment).run(self._job(step), *self._sinks(step.environment),
                                                          started=started)
                    else:
                        self.executors[step.environment].run(self._job(step), *self._sinks(step.environment))
                else:
                    run_side_by_side([(self._local(step.environment), self._job(step),
                                       *self._sinks(step.environment)) for step in steps])
        finally:
            for worker in ahead.values():
                worker.close()

    def _start_ahead(self, batches: list[list[Step]], index: int) -> dict[int, WorkerProcess]:
        """Start the workers of this batch and of the ones after it in the same round together, while nothing
        is measured (:func:`~dlbench.runner.executor.start_ahead`): each imports on every core beside the
        others and waits, warmed up, for its turn, instead of importing alone on its cores when its turn
        comes. Only lone CPU steps on this machine take part (a GPU worker waiting would hold memory on the
        GPU that another measures on; workers that take turns have their own ring); nothing is started ahead
        for a single worker."""
        chosen: list[tuple[int, Step]] = []
        limit = ahead_limit()
        for later in range(index, len(batches)):
            batch = batches[later]
            if len(chosen) >= limit or len(batch) != 1 or batch[0].round != batches[index][0].round:
                break
            step = batch[0]
            todo = self._todo(step)
            if not todo:
                continue
            if step.worker.device != "cpu" or not isinstance(self.executors[step.environment], LocalExecutor):
                break
            chosen.append((later, replace(step, cases=todo)))
        if len(chosen) < 2:
            return {}
        workers = start_ahead([(self._local(step.environment), self._job(step), *self._sinks(step.environment))
                               for _, step in chosen])
        return {later: worker for (later, _), worker in zip(chosen, workers, strict=True)}

    def batches(self, steps: list[Step]) -> list[list[Step]]:
        """The steps that run together: with ``interleave = "samples"``, the environments' steps of one round
        and CPU worker group run side by side, taking turns on the cores (:func:`run_side_by_side`); every
        other step runs alone. GPU groups always run alone: two workers on one GPU would each hold their
        memory there at once."""
        batches: list[list[Step]] = []
        for step in steps:
            last = batches[-1][-1] if batches else None
            if (last is not None and self._side_by_side(step) and last.round == step.round
                    and last.worker == step.worker):
                batches[-1].append(step)
            else:
                batches.append([step])
        return batches

    def _side_by_side(self, step: Step) -> bool:
        return (self.config.interleave == SAMPLES and step.worker.device == "cpu" and len(self.executors) > 1
                and all(isinstance(e, LocalExecutor) for e in self.executors.values()))

    def _local(self, environment: str) -> LocalExecutor:
        executor = self.executors[environment]
        assert isinstance(executor, LocalExecutor)  # _side_by_side checked it
        return executor

    def _job(self, step: Step) -> WorkerJob:
        return WorkerJob(key=step.worker, cores=cores_for(step.worker.threads), cases=step.cases,
                         measure=self.config.measure, seed=self.config.seed, gpu=self.config.suite.gpu)

    def _sinks(self, environment: str) -> tuple[ResultSink, RuntimeSink]:
        return functools.partial(self._record, environment), functools.partial(self._runtime, environment)

    def _record(self, environment: str, result: CaseResult) -> None:
        result = msgspec.structs.replace(result, environment=environment, host=result.host or HOSTNAME)
        self.store.add_round(result)
        if self.on_result is not None:
            self.on_result(result)

    def _runtime(self, environment: str, worker: WorkerKey, info: dict[str, Any]) -> None:
        self.store.set_framework_info(worker, info, environment)
