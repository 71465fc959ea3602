"""Run one framework's verification in its own worker process and turn any way it can end into results.

The worker is a job on the process kit (:mod:`dlbench.process`): pinned to the cores of ``--threads`` with the
thread variables set, exactly like a benchmark worker of ``run``. The parent never trusts it to finish: a
timeout, a crash (segfault, abort, OOM kill) or a non-zero exit turns every result the worker did not deliver
into an ``error`` result whose message says what happened, with the last line the worker printed on stderr
(where a framework's own error usually is).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dlbench.cases.spec import NATIVE_CONV
from dlbench.errors import DlbenchError
from dlbench.formatting import one_line
from dlbench.frameworks.registry import get_adapter
from dlbench.process.child import Cause, Child, ChildSpec, Ended, Ending
from dlbench.process.placement import place
from dlbench.verify.biases import DEFAULT_BIASES, check_bias_mode
from dlbench.verify.collect import ERROR, ImplResult, Target, target_convs
from dlbench.verify.job import WorkerRequest
from dlbench.verify.transfer import CODEC, Delivered, read_result

WORKER_MODULE = "dlbench.verify.job"


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
    python: str = sys.executable,
    precision: str = "float32",
    convs: Sequence[str] = (NATIVE_CONV,),
) -> list[ImplResult]:
    """Evaluate ``framework`` on every (variant, target, convolution algorithm) in fresh worker processes
    pinned to ``threads`` cores, with the verification weights of bias mode ``biases``: one worker for the
    variants that share a process, and one for each variant whose switch must be in the environment before
    the framework is imported (``Adapter.variant_env``), exactly as ``run`` places them."""
    check_bias_mode(biases)  # before a worker starts: it could only report the mistake once per case
    try:
        placement = place(threads)
    except ValueError as exc:
        raise DlbenchError(f"cannot verify with {threads} threads: {exc}") from None
    adapter = get_adapter(framework)
    groups: dict[str, list[str]] = {}
    for variant in variants:
        groups.setdefault(variant if adapter.own_process(variant) else "", []).append(variant)
    results: list[ImplResult] = []
    for process, members in groups.items():
        with tempfile.TemporaryDirectory(prefix="dlbench-verify-") as tmp:
            request = WorkerRequest(
                framework, tuple(members), tuple(targets), batch_size, seed, device, threads, tmp, biases,
                precision, tuple(convs),
            )
            spec = ChildSpec(module=WORKER_MODULE, placement=placement, codec=CODEC,
                             env=adapter.process_env(device, threads, process), python=python)
            delivered, failure = run_worker(spec, request, timeout_s)
        results += _fill_missing(request, delivered, failure, adapter.applies)
    order = {variant: i for i, variant in enumerate(variants)}
    return sorted(results, key=lambda r: order[r.variant])  # stable: each worker's own order within a variant


def run_worker(spec: ChildSpec, request: WorkerRequest, timeout_s: float) -> tuple[list[ImplResult], str]:
    """Run the worker to its end (at most ``timeout_s``); the results it delivered, and "" on a clean exit or
    why it ended otherwise."""
    delivered = []
    deadline = time.monotonic() + timeout_s
    with Child(spec, request.to_wire()) as child:
        while not isinstance(message := child.receive(deadline), Ended):
            if isinstance(message, Delivered):
                delivered.append(read_result(Path(request.out_dir), message))
        ending = child.ending()
    return delivered, describe_failure(ending, timeout_s)


def describe_failure(ending: Ending, timeout_s: float) -> str:
    """"" for a clean exit, else one line: what ended the worker and the last thing it said on stderr."""
    if ending.cause is Cause.TIMEOUT:
        return f"worker timed out after {timeout_s:g} s"
    if ending.cause is Cause.EXIT and ending.returncode == 0:
        return ""
    if ending.cause is Cause.EXIT:
        reason = f"worker exited with code {ending.returncode}"
    elif ending.cause is Cause.KERNEL_OOM:
        reason = "worker killed by the kernel's out-of-memory killer"
    else:
        reason = f"worker crashed ({ending.detail.removeprefix('killed by ')})"
    last = one_line(ending.last_line)
    return f"{reason}: {last}" if last else reason


def _fill_missing(request: WorkerRequest, delivered: list[ImplResult], failure: str,
                  applies: Callable[[str, str], bool]) -> list[ImplResult]:
    """Every requested (variant, target) that the variant applies to gets exactly one result, in request
    order; the worker skips a variant made for other workloads (e.g. an attention implementation on LeNet),
    so such a pair is not missing."""
    found = {(r.variant, r.target, r.conv): r for r in delivered}
    reason = failure or "worker finished without delivering this result"
    results = []
    for variant in request.variants:
        for target in request.targets:
            if not applies(variant, target.workload):
                continue
            for conv in target_convs(target, request.convs):
                result = found.get((variant, target, conv))
                missing = ImplResult(request.framework, variant, target, ERROR, reason, biases=request.biases,
                                     conv=conv)
                results.append(result or missing)
    return results
