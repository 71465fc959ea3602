"""The benchmark worker: the job the process kit runs to measure one group of cases.

The kit's boot (:mod:`dlbench.process.boot`) has already pinned the process to its cores, with the thread
variables in the environment, before this module is imported (JAX only honours affinity set before its backend
starts; TensorFlow refuses thread changes after its first op). :func:`child_main` then imports the framework
through the adapter, warms its runtime up, and measures each case in turn, reporting each result the moment it
exists so that a later crash loses nothing. A worker started ahead of its turn (:mod:`dlbench.process.gate`)
is not pinned by the boot: it imports its framework first (``Adapter.preload``), then pins every thread,
initialises and warms up, and waits at its gate until the parent lets it measure.
"""

from __future__ import annotations

import functools
import gc
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec

from dlbench.cases.spec import Case
from dlbench.frameworks.base import Adapter, BuildRequest, CaseUnavailable
from dlbench.machine import telemetry as gpu_telemetry
from dlbench.measure.device import DEVICE_BLOCKS, SYNC_PROBE_MAX_MEDIAN_MS, after_timing
from dlbench.measure.memory import current_rss, peak_rss, reset_peak_rss
from dlbench.measure.timing import MeasureConfig, measure
from dlbench.process.allocator import allocator_setting
from dlbench.process.gate import Gate, thread_affinities
from dlbench.process.messages import Channel
from dlbench.process.turns import Baton
from dlbench.record.results import FAILED, OK, OOM, UNAVAILABLE, CaseResult, Memory, failed_result
from dlbench.record.store import now_iso
from dlbench.runner import protocol
from dlbench.workloads import get_workload, initial_weights, make_batch


def error_text(exc: BaseException) -> str:
    """``Type: message`` plus the innermost frame, enough to find the cause in one line."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run_case(adapter: Adapter, job: protocol.WorkerJob, case: Case, threads_effective: int | None,
             baton: Baton | None = None) -> CaseResult:
    """Measure one case; any way it can fail in this process becomes its status. With a ``baton`` the
    worker takes turns with the other environments' workers (:mod:`dlbench.process.turns`): it yields the
    cores between two samples and waits for its next turn, so both sides sample the same moments."""
    workload = get_workload(case.workload)
    started, t0 = now_iso(), time.perf_counter()
    common: dict[str, Any] = {
        "params": workload.trainable_params(case.phase), "macs": workload.macs(case.phase),
        "threads_effective": threads_effective, "affinity": tuple(sorted(os.sched_getaffinity(0))),
        "started_at": started, "gpu_selector": gpu_selector(case.device),
    }
    built = None
    try:
        batch = make_batch(case.workload, case.batch_size, job.seed)
        weights = initial_weights(case.workload, job.seed)
        gc.collect()
        baseline = current_rss()
        reset_peak_rss()
        request = BuildRequest(workload=workload, phase=case.phase, batch=batch, weights=weights,
                               variant=case.variant, device=case.device, precision=case.precision,
                               conv=case.conv, case_key=case.key)
        on_gpu = case.device == "gpu"
        in_use_before = adapter.device_memory_in_use(case.device) if on_gpu else None
        built = adapter.build(request)  # checks the request and the canonical parameter count
        common["dtypes"] = built.dtypes()  # checked against the precision by build()
        common["traits"] = built.traits()
        built.reset_peak_memory()
        timed: list[Callable[[], Any]] = []

        def prepare() -> Callable[[], Any]:
            timed.append(built.prepare(case.pass_))
            return timed[-1]

        with gpu_telemetry.sampling(on_gpu) as telemetry:  # clocks, power, throttling
            between = None if baton is None else functools.partial(baton.pass_on, case.key)
            timing = measure(prepare, built.sync, job.measure, between_samples=between)
        rss = peak_rss()
        after = after_timing(built, timed[-1], case.pass_, timing.iterations_per_sample,
                             min(DEVICE_BLOCKS, len(timing.samples_ms)), steady=on_gpu,
                             probe=on_gpu or statistics.median(timing.samples_ms) < SYNC_PROBE_MAX_MEDIAN_MS)
        memory = Memory(peak_rss=rss, baseline_rss=baseline,
                        framework_peak=None if on_gpu else after.measure_peak,
                        device_peak=after.steady_peak if on_gpu else None,
                        device_peak_measure=after.measure_peak if on_gpu else None,
                        device_in_use_before=in_use_before)
        flops = built.framework_flops(case.pass_)
        return CaseResult(
            case=case, status=OK, samples_ms=timing.samples_ms, iterations_per_sample=timing.iterations_per_sample,
            first_call_ms=timing.first_call_ms, warmup_iterations=timing.warmup_iterations,
            framework_flops=flops, memory=memory, cpu_per_wall=timing.cpu_per_wall, gpu_telemetry=telemetry.summary,
            sync_ms=after.sync_ms, device_samples_ms=after.device_samples_ms,
            duration_s=time.perf_counter() - t0, **common)
    except CaseUnavailable as exc:
        return failed_result(case, UNAVAILABLE, str(exc), **common)
    except MemoryError as exc:
        return failed_result(case, OOM, f"out of memory: {exc}", **common)
    except Exception as exc:  # any framework error becomes this case's status; the next case still runs
        status = OOM if is_oom_message(str(exc)) else FAILED
        return failed_result(case, status, error_text(exc), duration_s=time.perf_counter() - t0, **common)
    finally:
        if built is not None:
            try:
                built.close()
            except Exception:
                pass
        gc.collect()


OOM_MARKERS = (
    "out of memory",  # torch.OutOfMemoryError ("CUDA out of memory"), cudaErrorMemoryAllocation
    "resource_exhausted", "resourceexhausted", "oom when allocating",  # TensorFlow, XLA/JAX
    "failed to allocate",  # XLA's allocators
    # cuBLAS and cuDNN could not get workspace or handle memory: the device is full, like any other OOM
    "cublas_status_alloc_failed", "cudnn_status_alloc_failed",
)


def is_oom_message(text: str) -> bool:
    """Framework errors that mean "out of memory" (CUDA OOM, XLA RESOURCE_EXHAUSTED, cuBLAS/cuDNN ...)."""
    lowered = text.lower()
    return any(marker in lowered for marker in OOM_MARKERS)


def ends_worker(case: Case, result: CaseResult) -> bool:
    """Whether the worker must be replaced after this case: a GPU case that ran out of memory or failed.
    A CUDA error can leave the context unusable ("sticky" errors) and an OOM can leave the allocator
    fragmented or the framework's state half torn down, so the next case would be measured in a damaged
    process, or fail for a reason that is not its own. A fresh worker costs one start-up."""
    return case.device == "gpu" and result.status in (OOM, FAILED)


WARMUP_MEASURE = MeasureConfig(warmup_s=0.0, min_block_s=0.0, min_samples=3, max_samples=3, min_time_s=0.0,
                               max_time_s=0.0)


def warmup_case(first: Case) -> Case:
    """The throwaway case a worker runs before its first measured one (see :func:`warm_up_runtime`).

    On a CPU: autoencoder/pretrain3 at batch 1, a few small matmuls. On a GPU: LeNet at batch 1, which
    has convolutions, so that loading cuDNN (and, where the framework has no native kernels for the GPU,
    compiling them from PTX) happens here and not in whichever conv case comes first. Both take the first
    case's variant and precision unless that variant exists for another workload only."""
    if first.device == "gpu":
        return msgspec.structs.replace(first, workload="lenet", phase="", pass_="gradient", batch_size=1)
    return msgspec.structs.replace(first, workload="autoencoder", phase="pretrain3", pass_="gradient", batch_size=1)


def warm_up_runtime(adapter: Adapter, job: protocol.WorkerJob, first: Case, threads: int | None) -> None:
    """Run one tiny throwaway case (:func:`warmup_case`, gradient pass) before measuring.

    A framework initialises thread pools, allocator arenas and kernel libraries lazily, on its first op; that
    one-time cost (memory and time) would otherwise be billed to whichever case happens to run first in
    the worker, making its first call and memory rise incomparable with the others. The gradient pass runs the
    forward pass too, so it initialises everything a forward pass would; what stays specific to a pass (its
    own trace or compilation) every case pays in its own first call anyway.
    """
    tiny = warmup_case(first)
    if not adapter.applies(tiny.variant, tiny.workload):  # e.g. a variant made for the LSTM only
        tiny = msgspec.structs.replace(tiny, variant=adapter.default_variant)
    result = run_case(adapter, replace(job, measure=WARMUP_MEASURE), tiny, threads)
    if result.status == UNAVAILABLE:  # an adapter without that workload (a Keras backend): the first case's own
        own = msgspec.structs.replace(first, pass_="gradient", batch_size=1)
        run_case(adapter, replace(job, measure=WARMUP_MEASURE), own, threads)


UNUSED_OPTIONAL_IMPORTS = ("matplotlib", "pandas")


def block_unused_imports() -> None:
    """Keep libraries out of the worker that frameworks import only for conveniences we never call.

    Keras, which TensorFlow imports, imports matplotlib (plotting helpers) and pandas (data adapters) when they
    are installed, and works without them; dlbench installs both for its reports. An entry of ``None`` in
    ``sys.modules`` makes their import raise ImportError in this process only, which spares every worker a
    large part of TensorFlow's start-up.
    """
    for name in UNUSED_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def settle_heap(collect: bool = True) -> None:
    """Freeze what the heap holds now (the framework's modules, caches and warmed-up runtime), after a
    collection when ``collect``.

    Every case collects garbage before its memory baseline and after it ends; a full collection walks every
    tracked object, and a framework such as TensorFlow holds millions of them, so each collection would cost a
    noticeable pause between cases. Frozen objects are never freed, which is what they are (module-level
    state); everything a case creates is still collected as before. Right after the import the collection is
    skipped: it would walk the whole framework once more for the little garbage an import leaves.
    """
    if collect:
        gc.collect()
    gc.freeze()


def gpu_selector(device: str) -> str:
    """The one GPU a GPU worker could see (``CUDA_VISIBLE_DEVICES``, set by :mod:`dlbench.process.placement`):
    an index in ``CUDA_DEVICE_ORDER`` (PCI bus order) or a UUID; "" for CPU cases."""
    return os.environ.get("CUDA_VISIBLE_DEVICES", "") if device == "gpu" else ""


def placement_settings(device: str) -> dict[str, str]:
    """The GPU placement this worker was started with (:mod:`dlbench.process.placement`), as its runtime
    settings record it: ``gpu_selector`` is the one GPU it could see (an index in ``CUDA_DEVICE_ORDER`` or a
    UUID), the value that names the GPU of every case of this worker. ``malloc``: how its C heap was set up
    (:mod:`dlbench.process.allocator`)."""
    if device != "gpu":
        gpu = {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")}
    else:
        gpu = {"gpu_selector": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
               "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER", "")}
    return {**gpu, "malloc": allocator_setting()}


def start_settings(gate: Gate | None) -> dict[str, str]:
    """How a worker started ahead of its turn was pinned, as its runtime settings record it: every thread
    of the process (those its framework's import started too) on its cores, checked after ``initialize``."""
    if gate is None:
        return {}
    masks = thread_affinities()
    stray = sum(1 for mask in masks.values() if mask != frozenset(gate.cores))
    pinned = f"{len(masks) - stray} of {len(masks)} threads on cores {','.join(map(str, sorted(gate.cores)))}"
    return {"started": "ahead of its turn (imported beside other workers, then pinned)", "pinned": pinned}


def child_main(data: dict[str, Any], channel: Channel) -> None:
    """Entry point in the worker process (called by the kit's boot, already pinned)."""
    job = protocol.WorkerJob.from_wire(data)
    baton = Baton.from_environment(channel)
    if baton is not None:
        baton.wait()  # nothing, not even the framework's import, runs beside another worker's samples
    block_unused_imports()
    from dlbench.frameworks.registry import get_adapter  # light: adapters import no framework at module level

    adapter = get_adapter(job.framework)
    gate = Gate.from_environment()  # started ahead of its turn: import on every core, then pin
    try:
        if gate is not None:
            adapter.preload(job.device)
            gate.pin()
        runtime = adapter.initialize(job.device, job.threads)
    except Exception as exc:
        status = UNAVAILABLE if job.device == "gpu" else FAILED
        channel.send(protocol.InitFailed(f"{job.framework} failed to initialise: {error_text(exc)}", status))
        return
    info = {"framework": runtime.framework, "version": runtime.version, "threads": runtime.threads,
            "devices": list(runtime.devices), "backends": runtime.backends,
            "settings": {**runtime.settings, **placement_settings(job.device), **start_settings(gate)},
            "affinity": sorted(os.sched_getaffinity(0))}
    channel.send(protocol.Ready(info))
    settle_heap(collect=False)
    if job.cases:
        warm_up_runtime(adapter, job, job.cases[0], runtime.threads)
    settle_heap()
    if gate is not None:
        channel.send(protocol.Waiting())
        gate.wait()  # idle until the worker before it has measured its last case
    for case in job.cases:
        channel.send(protocol.Started(case.key))
        result = run_case(adapter, job, case, runtime.threads, baton)
        channel.send(protocol.Finished(result))
        if ends_worker(case, result):
            return  # the parent starts a fresh worker for the cases left
        if baton is not None:
            # Between two cases the turn goes round once more, so that the other sides finish the case
            # they were told to stop along with this one before this worker builds its next case: a next
            # case that hangs (or compiles for minutes) while holding the turn would keep them from it.
            baton.pass_on()
