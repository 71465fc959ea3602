"""Run one framework's verification in its own worker process and turn any way it can end into results.

The parent never trusts the worker to finish: a timeout, a crash (segfault, abort, OOM kill) or a non-zero
exit turns every result the worker did not deliver into an ``error`` result whose message says what
happened, with the last line the worker printed on stderr (where a framework's own error usually is).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dlbench.frameworks.registry import get_adapter
from dlbench.verify.biases import DEFAULT_BIASES, check_bias_mode
from dlbench.verify.collect import ERROR, MAX_MESSAGE, ImplResult, Target
from dlbench.verify.transfer import read_results
from dlbench.verify.worker import WorkerRequest

STDERR_FILE = "worker.stderr"


def evaluate_isolated(
    framework: str,
    targets: Sequence[Target],
    variants: Sequence[str],
    batch_size: int,
    seed: int = 0,
    device: str = "cpu",
    threads: int = 1,
    timeout_s: float = 1800.0,
    biases: str = DEFAULT_BIASES,
) -> list[ImplResult]:
    """Evaluate ``framework`` on every (variant, target) in a fresh worker process, with the verification
    weights of bias mode ``biases``."""
    check_bias_mode(biases)  # before a worker starts: it could only report the mistake once per case
    adapter = get_adapter(framework)
    env = {**os.environ, **adapter.worker_env(device, threads)}
    with tempfile.TemporaryDirectory(prefix="dlbench-verify-") as tmp:
        directory = Path(tmp)
        request = WorkerRequest(
            framework, tuple(variants), tuple(targets), batch_size, seed, device, threads, str(directory), biases
        )
        request_path = directory / "request.json"
        request_path.write_text(request.to_json())
        command = [sys.executable, "-m", "dlbench.verify.worker", str(request_path)]
        failure = run_worker(command, directory / STDERR_FILE, env, timeout_s)
        delivered = read_results(directory)
    return _fill_missing(request, delivered, failure)


def run_worker(command: list[str], log: Path, env: dict[str, str], timeout_s: float) -> str:
    """Run the worker to completion, its output into ``log``; return "" on a clean exit, else why it ended.
    Unbuffered, so that the log's last line really is the last thing the worker said."""
    env = {**env, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return f"worker timed out after {timeout_s:g} s"
        except BaseException:
            _kill_group(process)  # Ctrl-C in the parent must not leave a framework process behind
            raise
    if code == 0:
        return ""
    last = _last_line(log)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        reason = f"worker crashed ({name})"
    else:
        reason = f"worker exited with code {code}"
    return f"{reason}: {last}" if last else reason


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the worker we started and anything it started (its own session), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "..."


def _fill_missing(request: WorkerRequest, delivered: list[ImplResult], failure: str) -> list[ImplResult]:
    """Every requested (variant, target) gets exactly one result, in request order."""
    found = {(r.variant, r.target): r for r in delivered}
    reason = failure or "worker finished without delivering this result"
    results = []
    for variant in request.variants:
        for target in request.targets:
            result = found.get((variant, target))
            missing = ImplResult(request.framework, variant, target, ERROR, reason, biases=request.biases)
            results.append(result or missing)
    return results
