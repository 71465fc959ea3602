"""Start and supervise worker processes; turn every way a worker can fail into result rows.

An :class:`Executor` takes a :class:`~dlbench.runner.protocol.WorkerJob` and reports each case's
:class:`~dlbench.results.CaseResult` through a callback as soon as it exists. :class:`LocalExecutor` runs
the job in child processes on this machine; a distributed executor for fleets of machines would implement
the same small interface.

Failure mapping (the worker never gets to decide these, the parent sees them happen):
  * the pipe closes while a case runs -> ``crashed`` (signal or exit code in the error), or ``oom`` when the
    kernel's OOM killer or our ``memory_limit_mb`` watchdog killed it;
  * a case runs longer than ``timeout_s`` -> ``timeout``; the worker is killed;
  * then a fresh worker is started for the cases that remain, so one bad case never sinks its group.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import psutil

from dlbench.frameworks.registry import get_adapter
from dlbench.results import CRASHED, FAILED, INTERRUPTED, OOM, TIMEOUT, CaseResult, failed_result
from dlbench.runner import protocol
from dlbench.spec import Case

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")
MIN_STARTUP_S = 30.0  # importing a framework can take seconds even when the case timeout is tiny
POLL_S = 0.25
STDERR_TAIL = 400


class ResultSink(Protocol):
    def __call__(self, result: CaseResult) -> None: ...


RuntimeSink = Callable[[str, dict[str, Any]], None]


class Executor(Protocol):
    """Runs one worker job and reports results (and the framework's runtime info) as they come."""

    def run(self, job: protocol.WorkerJob, on_result: ResultSink, on_runtime: RuntimeSink) -> None: ...


@dataclass
class LocalExecutor:
    """Runs each job in child processes on this machine, one case group at a time."""

    memory_limit_mb: float | None = None
    extra_env: dict[str, str] | None = None

    def run(self, job: protocol.WorkerJob, on_result: ResultSink, on_runtime: RuntimeSink) -> None:
        remaining = list(job.cases)
        while remaining:
            attempt = replace(job, cases=tuple(remaining))
            done = WorkerProcess(attempt, self).supervise(on_result, on_runtime)
            if not done:  # a worker that neither measured nor failed a case: do not loop forever
                for case in remaining:
                    on_result(failed_result(case, CRASHED, "worker exited without measuring any case"))
                return
            remaining = [c for c in remaining if c.key not in done]

    def probe(self, job: protocol.WorkerJob, on_runtime: RuntimeSink) -> None:
        """Start a worker with no cases, only to hear what its framework reports about itself."""
        WorkerProcess(replace(job, cases=()), self).supervise(lambda result: None, on_runtime)

    def environment(self, job: protocol.WorkerJob) -> dict[str, str]:
        env = dict(os.environ)
        for name in THREAD_ENV:
            env[name] = str(job.threads)
        env.update(get_adapter(job.framework).worker_env(job.device, job.threads))
        env["PYTHONUNBUFFERED"] = "1"
        if self.extra_env:
            env.update(self.extra_env)
        return env


class WorkerProcess:
    """One child process and the bookkeeping to attribute what happens to the right case."""

    def __init__(self, job: protocol.WorkerJob, executor: LocalExecutor) -> None:
        self.job = job
        self.executor = executor
        self.by_key = {c.key: c for c in job.cases}
        self.done: set[str] = set()
        self.current: Case | None = None
        self.case_started = 0.0
        self.killed_for: str | None = None  # TIMEOUT or OOM when we killed it
        # outside a case (import, warm-up, between cases) the worker gets the case timeout, at least 30 s
        self.startup_timeout_s = max(job.measure.timeout_s, MIN_STARTUP_S)

    def supervise(self, on_result: ResultSink, on_runtime: RuntimeSink) -> set[str]:
        """Run the worker to the end; returns the keys that got a result (any status)."""
        with tempfile.TemporaryDirectory(prefix="dlbench-worker-") as tmp:
            job_file = Path(tmp) / "job.json"
            job_file.write_text(self.job.to_json())
            read_fd, write_fd = os.pipe()
            stderr_path = Path(tmp) / "stderr.txt"
            with open(stderr_path, "wb") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "dlbench.runner.worker", str(job_file), str(write_fd)],
                    env=self.executor.environment(self.job), pass_fds=(write_fd,), stdout=err, stderr=err,
                    stdin=subprocess.DEVNULL, start_new_session=True,  # Ctrl-C reaches only the parent
                )
            os.close(write_fd)
            try:
                self._pump(proc, read_fd, on_result, on_runtime)
            except BaseException:
                self._kill(proc)
                if self.current is not None and self.current.key not in self.done:
                    on_result(failed_result(self.current, INTERRUPTED, "run interrupted"))
                    self.done.add(self.current.key)
                raise
            finally:
                os.close(read_fd)
            code = proc.wait()
            self._account_for_exit(code, stderr_path, on_result)
        return self.done

    def _pump(self, proc: subprocess.Popen[bytes], fd: int, on_result: ResultSink,
              on_runtime: RuntimeSink) -> None:
        buffer = b""
        last_event = time.monotonic()  # between cases (import, warm-up) the startup timeout applies
        while True:
            readable, _, _ = select.select([fd], [], [], POLL_S)
            if readable:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return  # EOF: the worker exited (or was killed)
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    message = protocol.decode(line)
                    if message is not None:
                        self._handle(message, on_result, on_runtime)
                        last_event = time.monotonic()
            now = time.monotonic()
            if self.current is not None and now - self.case_started > self.job.measure.timeout_s:
                self.killed_for = TIMEOUT
                self._kill(proc)
            elif self.current is None and now - last_event > self.startup_timeout_s:
                self.killed_for = TIMEOUT
                self._kill(proc)
            elif self._over_memory(proc):
                self.killed_for = OOM
                self._kill(proc)

    def _handle(self, message: dict[str, Any], on_result: ResultSink, on_runtime: RuntimeSink) -> None:
        event = message["event"]
        if event == protocol.READY:
            on_runtime(self.job.label, message["runtime"])
        elif event == protocol.INIT_FAILED:
            on_runtime(self.job.label, {"error": message["error"]})
            for case in self.job.cases:
                on_result(failed_result(case, message.get("status", FAILED), message["error"]))
                self.done.add(case.key)
        elif event == protocol.START:
            self.current = self.by_key.get(message["key"])
            self.case_started = time.monotonic()
        elif event == protocol.RESULT:
            result = CaseResult.from_dict(message["result"])
            self.done.add(result.case.key)
            self.current = None
            on_result(result)

    def _over_memory(self, proc: subprocess.Popen[bytes]) -> bool:
        limit = self.executor.memory_limit_mb
        if limit is None:
            return False
        try:
            rss = psutil.Process(proc.pid).memory_info().rss
        except psutil.Error:
            return False
        return rss > limit * 2**20

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()

    def _account_for_exit(self, code: int, stderr_path: Path, on_result: ResultSink) -> None:
        """Give the case that was running when the worker died its status; cases never started run again."""
        if self.current is None or self.current.key in self.done:
            if code != 0 and not self.done:
                # died before any case started (import crash): every case of the job fails the same way
                if self.killed_for == TIMEOUT:
                    reason = f"worker did not start its first case within {self.startup_timeout_s:g} s; killed"
                else:
                    reason = f"worker failed before the first case ({describe_exit(code)}){tail(stderr_path)}"
                for case in self.job.cases:
                    on_result(failed_result(case, self.killed_for or CRASHED, reason))
                    self.done.add(case.key)
            return
        case = self.current
        if self.killed_for == TIMEOUT:
            reason = f"no result after {self.job.measure.timeout_s:g} s; worker killed"
        elif self.killed_for == OOM:
            reason = f"worker exceeded the memory limit of {self.executor.memory_limit_mb:g} MB; killed"
        else:
            reason = f"worker died: {describe_exit(code)}{tail(stderr_path)}"
        status = self.killed_for or (OOM if code == -signal.SIGKILL else CRASHED)
        if status == OOM and self.killed_for is None:
            reason += " (SIGKILL from outside: most likely the kernel's out-of-memory killer)"
        on_result(failed_result(case, status, reason, affinity=tuple(self.job.cores)))
        self.done.add(case.key)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    if not text:
        return ""
    last = " | ".join(text.splitlines()[-3:])
    return f"; stderr: {last[-STDERR_TAIL:]}"
