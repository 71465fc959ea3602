"""A result's numbers, derived once from its raw samples and readings: numbers or ``None``, never text.

:func:`result_row` is the single source of every derived figure (median, IQR, confidence interval,
samples/s, FLOPs, GFLOP/s, memory in MB, ...). ``results.csv``, the report's data frame and the exporters
all read it, so they cannot disagree; only the CSV writer turns ``None`` into an empty field. Values are
rounded here, once, to the precision the CSV has always carried (timings to 0.1 µs).
"""

from __future__ import annotations

import statistics
from typing import Any

import msgspec

from dlbench.record.results import SYNC_SHARE_LIMIT, CaseResult
from dlbench.workloads.registry import pass_flops

CASE_COLUMNS = (
    "run_id", "environment", "key", "workload", "phase", "framework", "framework_version", "variant", "device",
    "threads", "batch_size", "pass", "precision", "conv", "status",
)
METRIC_COLUMNS = (
    "median_ms", "iqr_ms", "ci_low_ms", "ci_high_ms", "mean_ms", "std_ms", "min_ms", "n_samples", "rounds",
    "round_cv", "iterations_per_sample", "noisy", "first_call_ms", "samples_per_s", "params", "macs", "flops",
    "gflops_per_s", "framework_flops", "peak_rss_mb", "rss_rise_mb", "framework_peak_mb", "device_peak_mb",
    "threads_effective", "affinity", "cpu_per_wall", "host", "node_id", "retries", "started_at", "duration_s",
    "sync_ms", "sync_bound", "device_median_ms", "device_peak_measure_mb", "device_in_use_before_mb", "layout",
    "recurrence", "gpu_selector", "conv_backend",
)
CSV_COLUMNS = (*CASE_COLUMNS, *METRIC_COLUMNS, "error")
# The columns that hold numbers (int or float) or None.
NUMERIC_COLUMNS = (
    "threads", "batch_size", "median_ms", "iqr_ms", "ci_low_ms", "ci_high_ms", "mean_ms", "std_ms", "min_ms",
    "n_samples", "rounds", "round_cv", "iterations_per_sample", "first_call_ms", "samples_per_s", "params", "macs",
    "flops", "gflops_per_s", "framework_flops", "peak_rss_mb", "rss_rise_mb", "framework_peak_mb", "device_peak_mb",
    "threads_effective", "cpu_per_wall", "retries", "duration_s", "sync_ms", "device_median_ms",
    "device_peak_measure_mb", "device_in_use_before_mb",
)


class Metrics(msgspec.Struct, frozen=True):
    """The derived numbers of one result; ``None`` where the result has no such number (a failed case
    has no median, a CPU case no device peak). The statistics come from the raw samples."""

    median_ms: float | None = None
    iqr_ms: float | None = None
    ci_low_ms: float | None = None
    ci_high_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    min_ms: float | None = None
    n_samples: int | None = None
    rounds: int | None = None  # worker processes the samples came from (``--repeat``)
    round_cv: float | None = None  # spread of the round medians (coefficient of variation); None below 2
    iterations_per_sample: int | None = None
    noisy: bool | None = None
    first_call_ms: float | None = None
    samples_per_s: float | None = None
    params: int | None = None
    macs: int | None = None
    flops: float | None = None
    gflops_per_s: float | None = None
    framework_flops: float | None = None
    peak_rss_mb: float | None = None
    rss_rise_mb: float | None = None
    framework_peak_mb: float | None = None
    device_peak_mb: float | None = None
    threads_effective: int | None = None
    affinity: str = ""  # the cores the worker was pinned to, space separated
    cpu_per_wall: float | None = None
    host: str = ""  # the machine that ran the case
    node_id: str = ""  # on a Ray cluster: the node that ran it
    retries: int = 0  # times the case was placed again because its node died
    started_at: str = ""
    duration_s: float | None = None
    sync_ms: float | None = None  # one sync on the idle device (docs/measurement.md, "GPUs")
    sync_bound: bool | None = None  # that sync is more than 5% of the median
    device_median_ms: float | None = None  # median of the device-event times (PyTorch on a GPU)
    device_peak_measure_mb: float | None = None  # the device peak over the whole measurement, first call included
    device_in_use_before_mb: float | None = None  # the device allocator's bytes in use before the build
    layout: str = ""  # traits: the image layout in effect
    recurrence: str = ""  # traits: the LSTM fused or not
    conv_backend: str = ""  # traits: what the framework says computed its convolutions
    gpu_selector: str = ""  # the GPU (CUDA_VISIBLE_DEVICES) of a GPU case


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 3)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def metrics(result: CaseResult) -> Metrics:
    """Every derived number of ``result``."""
    memory = result.memory
    common: dict[str, Any] = dict(
        iterations_per_sample=result.iterations_per_sample or None, first_call_ms=_round(result.first_call_ms, 3),
        params=result.params, macs=result.macs, framework_flops=result.framework_flops,
        peak_rss_mb=_mb(memory.peak_rss), rss_rise_mb=_mb(memory.rise), framework_peak_mb=_mb(memory.framework_peak),
        device_peak_mb=_mb(memory.device_peak), threads_effective=result.threads_effective,
        affinity=" ".join(map(str, result.affinity)), cpu_per_wall=_round(result.cpu_per_wall, 3),
        host=result.host, node_id=result.node_id, retries=result.retries, started_at=result.started_at,
        duration_s=_round(result.duration_s, 3), sync_ms=_round(result.sync_ms, 5),
        device_median_ms=_round(statistics.median(result.device_samples_ms)) if result.device_samples_ms else None,
        device_peak_measure_mb=_mb(memory.device_peak_measure),
        device_in_use_before_mb=_mb(memory.device_in_use_before),
        layout=result.traits.get("layout", ""), recurrence=result.traits.get("recurrence", ""),
        conv_backend=result.traits.get("conv_backend", ""),
        gpu_selector=result.gpu_selector,
    )
    summary = result.summary()
    if summary is None:
        return Metrics(**common)
    case = result.case
    flops = pass_flops(case.workload, case.phase, case.pass_, case.batch_size, result.macs)
    seconds = summary.median / 1e3
    return Metrics(
        **common, median_ms=_round(summary.median), iqr_ms=_round(summary.iqr), ci_low_ms=_round(summary.ci_low),
        ci_high_ms=_round(summary.ci_high), mean_ms=_round(summary.mean), std_ms=_round(summary.std),
        min_ms=_round(summary.min), n_samples=summary.n, rounds=summary.rounds, round_cv=_round(summary.round_cv),
        noisy=summary.noisy,  # sync_bound from this summary: result.sync_bound would summarise the samples again
        sync_bound=result.sync_ms > SYNC_SHARE_LIMIT * summary.median if result.sync_ms is not None else None,
        samples_per_s=_round(case.batch_size / seconds, 2), flops=flops,
        gflops_per_s=_round(flops / seconds / 1e9, 3),
    )


def result_row(run_id: str, result: CaseResult, framework_version: str = "") -> dict[str, Any]:
    """One row of ``results.csv`` as values: the case's axes, its status, its :func:`metrics`, its error."""
    case = result.case
    row: dict[str, Any] = {
        "run_id": run_id, "environment": result.environment, "key": case.key, "workload": case.workload,
        "phase": case.phase,
        "framework": case.framework, "framework_version": framework_version, "variant": case.variant,
        "device": case.device, "threads": case.threads, "batch_size": case.batch_size, "pass": case.pass_,
        "precision": case.precision, "conv": case.conv, "status": result.status,
    }
    row.update(msgspec.structs.asdict(metrics(result)))
    row["error"] = result.error
    return row


def csv_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A row as CSV fields: the only place where a missing number becomes an empty field."""
    return {k: "" if v is None else v for k, v in row.items()}
