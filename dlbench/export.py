"""Serialise a stored run for other benchmark-tracking tools: pure ``record -> text`` functions.

* ``github-action-benchmark``: the list that its ``customSmallerIsBetter`` tool reads,
  ``[{"name", "unit", "value", "range", "extra"}]``; ``value`` is the median time in ms, ``range`` the
  half-width of the median's 95% confidence interval ("± 0.12"), ``extra`` the tooltip text.
* ``bencher``: Bencher Metric Format, ``{benchmark: {measure: {"value", "lower_value", "upper_value"}}}``,
  with the built-in ``latency`` measure in nanoseconds (the median and its confidence interval) and
  memory measures in bytes.
* ``json``: dlbench's own flat rows (the columns of ``results.csv``, failed cases included) plus the
  run's identity and environment, for tools that want everything.

Only cases with a timing can be tracked by the first two formats; the others are left out and counted
(:func:`untimed_count`), so the command can say so instead of silently shrinking the benchmark set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dlbench.formatting import MiB
from dlbench.results import CaseResult, Memory
from dlbench.stats import Summary
from dlbench.store import CSV_COLUMNS, RunRecord, result_row

JSON_SCHEMA = "dlbench-export/1"


def timed(record: RunRecord) -> list[tuple[CaseResult, Summary]]:
    """The ok results that have samples, with their summaries, in key order."""
    found = []
    for result in sorted(record.results, key=lambda r: r.case.key):
        summary = result.summary() if result.ok else None
        if summary is not None:
            found.append((result, summary))
    return found


def untimed_count(record: RunRecord) -> int:
    return len(record.results) - len(timed(record))


def memory_measures(memory: Memory) -> dict[str, int]:
    """The memory readings present for a case, by measure slug (``rss-rise``, ``framework-peak``, ...)."""
    readings = memory.readings().items()
    return {name.replace("_", "-"): value for name, value in readings if value is not None}


def _tooltip(record: RunRecord, result: CaseResult, summary: Summary) -> str:
    version = record.framework_versions().get(result.case.framework, "")
    return (
        f"n={summary.n} samples, IQR {summary.iqr:.4g} ms,"
        f" 95% CI [{summary.ci_low:.4g}, {summary.ci_high:.4g}] ms\n"
        f"{result.case.framework} {version} ({result.case.variant}), run {record.run_id}"
    )


def github_action_benchmark(record: RunRecord, memory: bool = True) -> str:
    entries: list[dict[str, Any]] = []
    for result, summary in timed(record):
        key = result.case.key
        entries.append({
            "name": key, "unit": "ms", "value": round(summary.median, 6),
            "range": f"± {(summary.ci_high - summary.ci_low) / 2:.4g}",
            "extra": _tooltip(record, result, summary),
        })
        if memory:
            for name, value in memory_measures(result.memory).items():
                entries.append({"name": f"{key} [{name}]", "unit": "MiB", "value": round(value / MiB, 3),
                                "extra": f"{name} of {key} in run {record.run_id}"})
    return json.dumps(entries, indent=1, ensure_ascii=False) + "\n"


def bencher(record: RunRecord, memory: bool = True) -> str:
    ns_per_ms = 1e6
    data: dict[str, dict[str, dict[str, float]]] = {}
    for result, summary in timed(record):
        measures: dict[str, dict[str, float]] = {
            "latency": {"value": summary.median * ns_per_ms, "lower_value": summary.ci_low * ns_per_ms,
                        "upper_value": summary.ci_high * ns_per_ms},
        }
        if memory:
            measures.update({name: {"value": float(v)} for name, v in memory_measures(result.memory).items()})
        data[result.case.key] = measures
    return json.dumps(data, indent=1) + "\n"


def generic(record: RunRecord, memory: bool = True) -> str:
    """Every result as a flat row (memory columns are always part of a row, so ``memory`` is ignored)."""
    versions = record.framework_versions()
    rows = [result_row(record.run_id, r, versions.get(r.case.framework, "")) for r in record.results]
    data = {
        "schema": JSON_SCHEMA, "run_id": record.run_id, "created": record.created, "status": record.status,
        "environment": record.environment, "columns": list(CSV_COLUMNS),
        "results": [{k: (None if v == "" else v) for k, v in row.items()} for row in rows],
    }
    return json.dumps(data, indent=1, default=str) + "\n"


EXPORTERS: dict[str, Callable[[RunRecord, bool], str]] = {
    "github-action-benchmark": github_action_benchmark,
    "bencher": bencher,
    "json": generic,
}
