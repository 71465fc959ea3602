"""What was measured, and how it is kept: the typed run record, its files and the numbers derived from it.

``results`` is what one case produced (:class:`~dlbench.record.results.CaseResult`, statuses, memory);
``schema`` the typed ``run.json`` (configuration, environment, results; its JSON Schema) and ``schema_v1``
the upgrade of version-1 files; ``store`` writes a run while it is measured and loads stored runs, with
``journal`` (the lines a running run appends to ``run.jsonl``, and how a reader applies them) and ``compact``
(folding a killed run's journal into its ``run.json`` when asked); ``files`` reads inputs safely and writes
files atomically or a line at a time; ``metrics`` derives a row (median, CI, GFLOP/s,
MB) from a result; ``export`` turns a run into the formats other tools read.
"""

from __future__ import annotations

from typing import Any

# The names of the 0.1 module ``dlbench.record``, now ``dlbench.record.schema``: kept for one release.
_SCHEMA_NAMES = frozenset({
    "SCHEMA_VERSION", "EXECUTORS", "MAX_MEMORY_LIMIT_MB", "ROUNDS", "SAMPLES", "INTERLEAVES", "DeviceSettings",
    "SuiteRecord", "ExecutorConfig", "PythonEnvironment", "RunConfig", "HostInfo", "GpuInfo", "GitInfo",
    "FrameworkRuntime", "Calibration", "ControlReading", "EnvironmentRuntime", "first_per_framework",
    "Environment", "RunRecord", "dumps", "json_schema",
})


def __getattr__(name: str) -> Any:
    if name not in _SCHEMA_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import dlbench
    from dlbench.record import schema

    dlbench.moved_warning(f"{__name__}.{name}", f"{schema.__name__}.{name}")
    return getattr(schema, name)
