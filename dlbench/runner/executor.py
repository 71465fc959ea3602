"""Run benchmark workers on the process kit and turn every way a worker can fail into result rows.

An :class:`Executor` takes a :class:`~dlbench.runner.protocol.WorkerJob` and reports each case's
:class:`~dlbench.record.results.CaseResult` through a callback as soon as it exists, and what the worker's framework
reports about itself through another. :class:`LocalExecutor` runs the job in child processes on this machine
(:mod:`dlbench.process`); a distributed executor for fleets of machines implements the same small interface.

Failure mapping (the worker never gets to decide these, the parent sees them happen):
  * the worker dies while a case runs -> ``crashed`` (the signal or exit code in the error), or ``oom`` when
    our ``memory_limit_mb`` watchdog killed it (the error names the limit) or the kernel's OOM killer did (its
    kill counter rose while the worker lived); a SIGKILL from anyone else is ``crashed``, "killed by SIGKILL";
  * a case has no result ``timeout_s`` after it started -> ``timeout``; the worker is killed. A result that
    arrives after the deadline counts as a timeout too, so a timeout shorter than any polling still holds;
  * then a fresh worker is started for the cases that remain, so one bad case never sinks its group.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

import psutil

from dlbench.cases.spec import Case, WorkerKey
from dlbench.frameworks.registry import get_adapter
from dlbench.process.child import Cause, Child, ChildSpec, Ended
from dlbench.process.turns import Turns, Yield
from dlbench.record.results import CRASHED, FAILED, INTERRUPTED, OOM, TIMEOUT, CaseResult, failed_result
from dlbench.runner import protocol

MIN_STARTUP_S = 30.0  # importing a framework can take seconds even when the case timeout is tiny
# A GPU worker's start-up includes its warm-up on the GPU, where loading CUDA, cuDNN and cuBLAS takes seconds
# and a framework without native kernels for the GPU's compute capability compiles them from PTX, which
# can take many minutes (TensorFlow's documentation warns of 30 and more) until CUDA's cache holds them.
MIN_GPU_STARTUP_S = 1800.0
PTX_HINT = ("; GPU workers are allowed this long because a framework without native kernels for the GPU "
            "compiles them from PTX at start-up (see the worker's kernel_binaries setting)")
WORKER_MODULE = "dlbench.runner.worker"


class ResultSink(Protocol):
    def __call__(self, result: CaseResult) -> None: ...


RuntimeSink = Callable[[WorkerKey, dict[str, Any]], None]
TraceSink = Callable[[str, WorkerKey, float, int], None]  # (event, worker, time.monotonic(), pid): WorkerProcess


class Executor(Protocol):
    """Runs one worker job and reports results (and the framework's runtime info) as they come."""

    def run(self, job: protocol.WorkerJob, on_result: ResultSink, on_runtime: RuntimeSink) -> None: ...


@dataclass
class LocalExecutor:
    """Runs each job in child processes on this machine, one case group at a time.

    ``python`` is the interpreter of the workers (another virtualenv's python works if it can import dlbench);
    ``trace``, if given, hears every step of every worker's life (for the harness-overhead benchmark)."""

    memory_limit_mb: float | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable
    trace: TraceSink | None = None

    def run(self, job: protocol.WorkerJob, on_result: ResultSink, on_runtime: RuntimeSink,
            turns: SharedCores | None = None, rank: int = 0, started: WorkerProcess | None = None) -> None:
        """Measure the job's cases, starting a fresh worker after one dies; with ``turns`` every worker
        takes turns on its cores with the other workers of that ring, at place ``rank``
        (:func:`run_side_by_side`). ``started``: the job's worker, already started ahead of its turn and
        waiting at its gate (:func:`start_ahead`)."""
        remaining = list(job.cases)
        while remaining:
            attempt = replace(job, cases=tuple(remaining))
            worker = started if started is not None else WorkerProcess(attempt, self, turns, rank)
            started = None  # a replacement after a crash starts the usual way
            done = worker.supervise(on_result, on_runtime)
            if turns is not None and turns.stopped:
                return
            if not done:  # a worker that neither measured nor failed a case: do not loop forever
                for case in remaining:
                    on_result(failed_result(case, CRASHED, "worker exited without measuring any case"))
                return
            remaining = [c for c in remaining if c.key not in done]

    def probe(self, job: protocol.WorkerJob, on_runtime: RuntimeSink) -> None:
        """Start a worker with no cases, only to hear what its framework reports about itself."""
        WorkerProcess(replace(job, cases=()), self).supervise(lambda result: None, on_runtime)

    def spec(self, job: protocol.WorkerJob, baton: bool = False, gate: bool = False) -> ChildSpec:
        env = {**get_adapter(job.framework).process_env(job.device, job.threads, job.key.process), **self.extra_env}
        return ChildSpec(module=WORKER_MODULE, placement=job.placement, codec=protocol.CODEC, env=env,
                         python=self.python, memory_limit_mb=self.memory_limit_mb, baton=baton, gate=gate)


@dataclass
class SharedCores:
    """The workers of one :func:`run_side_by_side`: their ring of turns, how many they are (a worker's
    deadlines stretch by that much, since it runs only part of the time), and whether the run was stopped."""

    members: int
    turns: Turns = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one result callback at a time
    stopped: bool = False

    def __post_init__(self) -> None:
        self.turns = Turns(expected=self.members)  # the first turn waits until every worker has started

    def stop(self) -> None:
        """Ctrl-C: end every worker now; each supervising thread then records its running case as interrupted.
        A worker that joins the ring after this sees ``stopped`` and is killed by its own thread."""
        self.stopped = True
        for member in self.turns.members():
            cast(Child, member).kill()  # the ring's members are the workers' children


SideBySide = tuple[LocalExecutor, protocol.WorkerJob, ResultSink, RuntimeSink]


def run_side_by_side(runs: list[SideBySide]) -> int:
    """Run these jobs at the same time on the same cores, taking turns sample by sample (see
    :mod:`dlbench.process.turns`): the environments of an A/B run measured under the same drift of the
    machine. Each job is supervised from its own thread, exactly as :meth:`LocalExecutor.run` would alone
    (a worker that dies is replaced, its case gets its status); the result callbacks are called one at a
    time. Returns how many turns were handed out. Ctrl-C ends every worker, marks their running cases
    ``interrupted`` and is raised again."""
    shared = SharedCores(members=len(runs))
    failures: list[BaseException] = []

    def supervise(rank: int, executor: LocalExecutor, job: protocol.WorkerJob, on_result: ResultSink,
                  on_runtime: RuntimeSink) -> None:
        def result(result: CaseResult) -> None:
            with shared.lock:
                on_result(result)

        def runtime(worker: WorkerKey, info: dict[str, Any]) -> None:
            with shared.lock:
                on_runtime(worker, info)

        try:
            executor.run(job, result, runtime, shared, rank)
        except BaseException as exc:  # reported to the calling thread, which raises it
            failures.append(exc)
            shared.stop()

    threads = [threading.Thread(target=supervise, args=(rank, *run), daemon=True) for rank, run in enumerate(runs)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)  # short waits: Ctrl-C reaches the main thread between them
    except BaseException:
        shared.stop()
        for thread in threads:
            thread.join()
        raise
    if failures:
        raise failures[0]
    if shared.stopped:
        raise KeyboardInterrupt
    return shared.turns.given


AHEAD_MAX = 6  # workers started ahead at once, at most
AHEAD_MEMORY = 2 * 2**30  # memory to keep free per worker started ahead (an idle, warmed-up framework holds less)

Ahead = tuple[LocalExecutor, protocol.WorkerJob, ResultSink, RuntimeSink]


def ahead_limit() -> int:
    """How many workers may wait ahead of their turn at once: :data:`AHEAD_MAX`, fewer where memory is short."""
    return max(1, min(AHEAD_MAX, int(psutil.virtual_memory().available // AHEAD_MEMORY)))


def start_ahead(entries: list[Ahead]) -> list[WorkerProcess]:
    """Start these jobs' workers together and wait until each is imported and warmed up, waiting at its gate
    (:mod:`dlbench.process.gate`); :meth:`LocalExecutor.run` then measures each job with its worker, in
    turn. Call it only while nothing is measured: the workers import side by side on every core. What a
    worker reports meanwhile (its framework, or that it failed to start) reaches its sinks at once. The
    caller closes every worker it does not run (:meth:`WorkerProcess.close`)."""
    workers = [WorkerProcess(job, executor, gated=True, together=len(entries)) for executor, job, _, _ in entries]
    try:
        for worker in workers:
            worker.start()
        for worker, (_, _, on_result, on_runtime) in zip(workers, entries, strict=True):
            worker.until_waiting(on_result, on_runtime)
    except BaseException:
        for worker in workers:
            worker.close()
        raise
    return workers


def startup_timeout(job: protocol.WorkerJob) -> float:
    """How long a worker may take outside a case (import, warm-up, between cases): the case timeout, at
    least :data:`MIN_STARTUP_S`, and on a GPU at least :data:`MIN_GPU_STARTUP_S`."""
    floor = MIN_GPU_STARTUP_S if job.device == "gpu" else MIN_STARTUP_S
    return max(job.measure.timeout_s, floor)


class WorkerProcess:
    """One worker process and the bookkeeping to attribute what happens to the right case.

    A *gated* worker is started ahead of its turn (:func:`start_ahead`): :meth:`start`,
    then :meth:`until_waiting` while nothing is measured, and :meth:`supervise` opens its gate when its turn
    comes. ``together``: how many workers start at once (their start-up deadline stretches to match)."""

    def __init__(self, job: protocol.WorkerJob, executor: LocalExecutor, shared: SharedCores | None = None,
                 rank: int = 0, gated: bool = False, together: int = 1) -> None:
        self.job = job
        self.executor = executor
        self.shared = shared
        self.rank = rank  # its place in the ring of turns (the first rank goes first)
        self.gated = gated
        # a worker that takes turns with others runs only part of the time: its deadlines stretch to match
        self.timeout_s = job.measure.timeout_s * (shared.members if shared is not None else 1)
        self.by_key = {c.key: c for c in job.cases}
        self.done: set[str] = set()
        self.current: Case | None = None
        self.case_deadline = 0.0
        self.late = False  # the running case's result came after its deadline
        self.pid = 0
        self.startup_timeout_s = startup_timeout(job) * (shared.members if shared is not None else 1) * together
        self.child: Child | None = None
        self.ended = False  # the worker ended before its gate opened (failed to start, or killed)

    def _trace(self, event: str) -> None:
        if self.executor.trace is not None:
            self.executor.trace(event, self.job.key, time.monotonic(), self.pid)

    def start(self) -> Child:
        """Spawn the worker process (once)."""
        if self.child is None:
            child = Child(self.executor.spec(self.job, baton=self.shared is not None, gate=self.gated),
                          self.job.to_wire())
            child.start()
            self.child = child
            self.pid = child.pid
            self._trace("spawn")
        return self.child

    def close(self) -> None:
        """Kill the worker if it still runs and remove its files (a worker started ahead and never run)."""
        if self.child is not None:
            self.child.close()

    def until_waiting(self, on_result: ResultSink, on_runtime: RuntimeSink) -> None:
        """Read a gated worker's messages until it waits at its gate, or ends (then :meth:`supervise` says how)."""
        child = self.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            message = child.receive(deadline)
            if isinstance(message, Ended):
                self.ended = True
                return
            if isinstance(message, protocol.Waiting):
                self._trace("waiting")
                return
            self._handle(child, message, on_result, on_runtime)

    def supervise(self, on_result: ResultSink, on_runtime: RuntimeSink) -> set[str]:
        """Run the worker to the end; returns the keys that got a result (any status)."""
        shared = self.shared
        child = self.start()
        try:
            try:
                if shared is not None:
                    shared.turns.join(child, self.rank)
                    if shared.stopped:  # stopped while this worker was being started
                        child.kill()
                if not self.ended:
                    if self.gated:
                        child.open_gate()
                        self._trace("go")
                    self._pump(child, on_result, on_runtime)
                if shared is not None and shared.stopped:
                    raise KeyboardInterrupt
            except BaseException:
                child.kill()
                if self.current is not None and self.current.key not in self.done:
                    on_result(failed_result(self.current, INTERRUPTED, "run interrupted"))
                    self.done.add(self.current.key)
                if shared is None or not shared.stopped:
                    raise
                return self.done  # stopped from outside: the caller raises KeyboardInterrupt once
            finally:
                if shared is not None:
                    shared.turns.leave(child)
            self._account_for_end(child, on_result)
        finally:
            child.close()
        self._trace("exit")
        return self.done

    def _pump(self, child: Child, on_result: ResultSink, on_runtime: RuntimeSink) -> None:
        idle_deadline = time.monotonic() + self.startup_timeout_s  # import, warm-up, between cases
        while True:
            message = child.receive(self.case_deadline if self.current is not None else idle_deadline)
            if isinstance(message, Ended):
                return
            if isinstance(message, protocol.Finished) and time.monotonic() > self.case_deadline:
                self.late = True  # it came, but too late: the case timed out like any other
                child.kill(Cause.TIMEOUT)
                return
            self._handle(child, message, on_result, on_runtime)
            idle_deadline = time.monotonic() + self.startup_timeout_s

    def _handle(self, child: Child, message: object, on_result: ResultSink, on_runtime: RuntimeSink) -> None:
        if isinstance(message, protocol.Ready):
            self._trace("ready")
            on_runtime(self.job.key, message.runtime)
        elif isinstance(message, protocol.InitFailed):
            on_runtime(self.job.key, {"error": message.error})
            for case in self.job.cases:
                on_result(failed_result(case, message.status or FAILED, message.error))
                self.done.add(case.key)
        elif isinstance(message, Yield):
            if self.shared is not None:
                self.shared.turns.yielded(child, message.topic, message.ready)
        elif isinstance(message, protocol.Started):
            self._trace("start")
            self.current = self.by_key.get(message.key)
            self.case_deadline = time.monotonic() + self.timeout_s
        elif isinstance(message, protocol.Finished):
            self._trace("result")
            self.done.add(message.result.case.key)
            self.current = None
            on_result(message.result)

    def _account_for_end(self, child: Child, on_result: ResultSink) -> None:
        """Give the case that was running when the worker died its status; cases never started run again."""
        ending = child.ending()
        limit = self.executor.memory_limit_mb
        stderr = f"; stderr: {ending.stderr}" if ending.stderr else ""
        if self.current is None or self.current.key in self.done:
            if ending.returncode != 0 and not self.done:
                # died before any case started (import crash): every case of the job fails the same way
                if ending.cause is Cause.TIMEOUT:
                    status = TIMEOUT
                    hint = PTX_HINT if self.job.device == "gpu" else ""
                    reason = f"worker did not start its first case within {self.startup_timeout_s:g} s; killed{hint}"
                elif ending.cause is Cause.MEMORY_LIMIT:
                    status = OOM
                    reason = f"worker exceeded the memory limit of {limit:g} MB (--memory-limit) before its first case"
                elif ending.cause is Cause.KERNEL_OOM:
                    status, reason = OOM, "worker killed by the kernel's out-of-memory killer before its first case"
                else:
                    status, reason = CRASHED, f"worker failed before the first case ({ending.detail}){stderr}"
                for case in self.job.cases:
                    on_result(failed_result(case, status, reason))
                    self.done.add(case.key)
            return
        case = self.current
        if ending.cause is Cause.TIMEOUT or self.late:  # late: the worker may have exited on its own meanwhile
            status, reason = TIMEOUT, f"no result after {self.timeout_s:g} s; worker killed"
        elif ending.cause is Cause.MEMORY_LIMIT:
            status, reason = OOM, f"worker exceeded the memory limit of {limit:g} MB (--memory-limit); killed"
        elif ending.cause is Cause.KERNEL_OOM:
            status = OOM
            reason = ("worker killed by the kernel's out-of-memory killer (SIGKILL while the kernel's OOM kill "
                      f"count rose){stderr}")
        else:
            status, reason = CRASHED, f"worker died: {ending.detail}{stderr}"
        on_result(failed_result(case, status, reason, affinity=tuple(self.job.cores)))
        self.done.add(case.key)
