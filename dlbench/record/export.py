"""Serialise a stored run for other benchmark-tracking tools: pure ``record -> text`` functions.

* ``github-action-benchmark``: the list that its ``customSmallerIsBetter`` tool reads,
  ``[{"name", "unit", "value", "range", "extra"}]``; ``value`` is the median time in ms, ``range`` the
  95% confidence interval of the median as distances below and above it ("-0.031 / +0.12": the interval
  is not symmetric, so one "±" figure would misstate one side), ``extra`` the tooltip text. With
  ``metric="throughput"`` the list is for ``customBiggerIsBetter`` instead: samples per second (batch size
  over the median time) with the interval carried over, and no memory entries (more memory is not better).
* ``bencher``: Bencher Metric Format, ``{benchmark: {measure: {"value", "lower_value", "upper_value"}}}``,
  with the built-in ``latency`` measure in nanoseconds (the median and its confidence interval), a
  ``throughput`` measure in samples per second, and memory measures in bytes.
* ``json``: dlbench's own flat rows (the columns of ``results.csv``, failed cases included) plus the
  run's identity and environment, for tools that want everything.

Only cases with a timing can be tracked by the first two formats; the others are left out and counted
(:func:`untimed_count`), so the command can say so instead of silently shrinking the benchmark set, and a
run with no timed case at all is refused (:func:`require_timed`): an empty list would make the CI step
fail later with a less helpful message, or worse, pass. Every form is strict JSON (``allow_nan=False``;
non-finite numbers in the environment become null), which is what other tools parse.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec

from dlbench.errors import DlbenchError
from dlbench.formatting import MiB
from dlbench.record.metrics import CSV_COLUMNS, result_row
from dlbench.record.results import CaseResult, Memory
from dlbench.record.schema import RunRecord, dumps
from dlbench.statistics.samples import Summary

JSON_SCHEMA = "dlbench-export/1"
TIME, THROUGHPUT = "time", "throughput"
METRICS = (TIME, THROUGHPUT)


def export_name(result: CaseResult) -> str:
    """The benchmark's name in the tracking tool: the case's stable key, and in an A/B run (``--python
    NAME=PATH``) its environment after an ``@`` (``lenet/-/forward/torch/.../float32@head``), so that the
    two environments' cases are two series instead of one name given twice (github-action-benchmark) or
    one overwriting the other (Bencher). Runs without environments keep the bare key, so their series
    continue unbroken."""
    return f"{result.case.key}@{result.environment}" if result.environment else result.case.key


def timed(record: RunRecord) -> list[tuple[CaseResult, Summary]]:
    """The ok results that have samples, with their summaries, in name order."""
    found = []
    for result in sorted(record.results, key=export_name):
        summary = result.summary() if result.ok else None
        if summary is not None:
            found.append((result, summary))
    return found


def untimed_count(record: RunRecord) -> int:
    return len(record.results) - len(timed(record))


def require_timed(record: RunRecord) -> None:
    """Refuse a run in which no case has a timing: there is nothing a tracking tool could chart."""
    if not timed(record):
        statuses = sorted({r.status for r in record.results})
        detail = f"{len(record.results)} case(s), status {', '.join(statuses)}" if statuses else "no cases"
        raise DlbenchError(f"run {record.run_id} has no timed case to export ({detail})")


def _dumps(data: Any) -> str:
    """Strict JSON: a NaN or infinity would be an error here rather than invalid JSON for the reader."""
    return dumps(_finite(data)) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def throughput(result: CaseResult, summary: Summary) -> tuple[float, float, float]:
    """Samples per second from the median time, with its interval: ``(value, low, high)``."""
    per_ms = result.case.batch_size * 1e3
    return per_ms / summary.median, per_ms / summary.ci_high, per_ms / summary.ci_low


def range_text(value: float, low: float, high: float) -> str:
    """The interval as distances below and above the value: honest when it is not symmetric."""
    return f"-{value - low:.3g} / +{high - value:.3g} (95% CI)"


def memory_measures(memory: Memory) -> dict[str, int]:
    """The memory readings present for a case, by measure slug (``rss-rise``, ``framework-peak``, ...)."""
    readings = memory.readings().items()
    return {name.replace("_", "-"): value for name, value in readings if value is not None}


def _tooltip(record: RunRecord, result: CaseResult, summary: Summary) -> str:
    version = record.framework_versions(result.environment).get(result.case.framework, "")
    return (
        f"n={summary.n} samples, IQR {summary.iqr:.4g} ms,"
        f" 95% CI [{summary.ci_low:.4g}, {summary.ci_high:.4g}] ms\n"
        f"{result.case.framework} {version} ({result.case.variant}), run {record.run_id}"
    )


def github_action_benchmark(record: RunRecord, memory: bool = True, metric: str = TIME) -> str:
    require_timed(record)
    entries: list[dict[str, Any]] = []
    for result, summary in timed(record):
        key = export_name(result)
        if metric == THROUGHPUT:
            value, low, high = throughput(result, summary)
            entries.append({"name": key, "unit": "samples/s", "value": round(value, 3),
                            "range": range_text(value, low, high), "extra": _tooltip(record, result, summary)})
            continue
        entries.append({
            "name": key, "unit": "ms", "value": round(summary.median, 6),
            "range": range_text(summary.median, summary.ci_low, summary.ci_high),
            "extra": _tooltip(record, result, summary),
        })
        if memory:
            for name, value in memory_measures(result.memory).items():
                entries.append({"name": f"{key} [{name}]", "unit": "MiB", "value": round(value / MiB, 3),
                                "extra": f"{name} of {key} in run {record.run_id}"})
    return _dumps(entries)


def bencher(record: RunRecord, memory: bool = True, metric: str = TIME) -> str:
    """Both latency and throughput are always present (Bencher keeps one series per measure), so
    ``metric`` is ignored."""
    require_timed(record)
    ns_per_ms = 1e6
    data: dict[str, dict[str, dict[str, float]]] = {}
    for result, summary in timed(record):
        rate, rate_low, rate_high = throughput(result, summary)
        measures: dict[str, dict[str, float]] = {
            "latency": {"value": summary.median * ns_per_ms, "lower_value": summary.ci_low * ns_per_ms,
                        "upper_value": summary.ci_high * ns_per_ms},
            "throughput": {"value": rate, "lower_value": rate_low, "upper_value": rate_high},
        }
        if memory:
            measures.update({name: {"value": float(v)} for name, v in memory_measures(result.memory).items()})
        data[export_name(result)] = measures
    return _dumps(data)


def generic(record: RunRecord, memory: bool = True, metric: str = TIME) -> str:
    """Every result as a flat row (memory columns and ``samples_per_s`` are always part of a row, so
    ``memory`` and ``metric`` are ignored). Failed cases are rows too, but a run with no timing at all is
    refused like in the other formats."""
    require_timed(record)
    rows = [result_row(record.run_id, r, record.framework_versions(r.environment).get(r.case.framework, ""))
            for r in record.results]
    data = {
        "schema": JSON_SCHEMA, "run_id": record.run_id, "created": record.created, "status": record.status,
        "environment": {**msgspec.to_builtins(record.environment, str_keys=True),
                        "frameworks": msgspec.to_builtins(record.environment.frameworks)},
        "columns": list(CSV_COLUMNS),
        "results": rows,
    }
    return _dumps(data)


EXPORTERS: dict[str, Callable[[RunRecord, bool, str], str]] = {
    "github-action-benchmark": github_action_benchmark,
    "bencher": bencher,
    "json": generic,
}
