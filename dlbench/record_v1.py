"""Reading version-1 run records (written by dlbench 0.1) into today's :class:`~dlbench.record.RunRecord`.

Version 1 kept the same facts in looser places: the suite repeated the measurement settings and the suite
file's own seed next to the run's seed in ``config``; the environment listed each framework's runtime twice
(``frameworks`` and ``workers``); results repeated their case key. The upgrade keeps every fact a report,
a comparison or a resume uses: the run's (effective) seed, the measurement settings, the planned cases, the
memory limit, every worker's runtime, the calibration, all results with their raw samples.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from dlbench.measure.timing import MeasureConfig
from dlbench.record import (
    Environment,
    FrameworkRuntime,
    MemoryLimitMb,
    RunConfig,
    RunRecord,
    RunStatus,
    SuiteRecord,
)
from dlbench.results import CaseResult
from dlbench.spec import Case, Name, Seed


class SuiteV1(SuiteRecord, frozen=True):
    precision: str = "float32"  # version 1 planned one precision
    measure: MeasureConfig | None = None
    seed: int | None = None  # the suite file's seed; the run's own seed is config.seed


class ConfigV1(msgspec.Struct, frozen=True):
    cases: tuple[Case, ...]
    measure: MeasureConfig
    seed: Seed = 0
    memory_limit_mb: MemoryLimitMb | None = None
    default_variants: dict[str, str] = {}
    command: tuple[str, ...] = ()


class EnvironmentV1(Environment, frozen=True):
    frameworks_v1: dict[str, FrameworkRuntime] = msgspec.field(default={}, name="frameworks")


class RunRecordV1(msgspec.Struct, kw_only=True):
    schema_version: Annotated[int, msgspec.Meta(ge=1, le=1)]
    run_id: Name
    created: str
    finished: str = ""
    status: RunStatus = "running"
    environment: EnvironmentV1 = EnvironmentV1()
    suite: SuiteV1
    config: ConfigV1
    results: list[CaseResult] = []


def upgrade(old: RunRecordV1) -> RunRecord:
    """The version-2 record holding the same facts."""
    suite_fields = {f: getattr(old.suite, f) for f in SuiteRecord.__struct_fields__}
    config = RunConfig(
        suite=SuiteRecord(**{**suite_fields, "precisions": (old.suite.precision,)}), cases=old.config.cases,
        measure=old.config.measure,
        seed=old.config.seed, memory_limit_mb=old.config.memory_limit_mb,
        default_variants=old.config.default_variants, command=old.config.command,
    )
    workers = dict(old.environment.workers)
    covered = {runtime.framework for runtime in workers.values()}
    for name, runtime in old.environment.frameworks_v1.items():  # a framework seen by no listed worker
        if name not in covered:
            workers[name] = runtime
    env_fields = {f: getattr(old.environment, f) for f in Environment.__struct_fields__}
    environment = Environment(**{**env_fields, "workers": workers})
    return RunRecord(
        run_id=old.run_id, created=old.created, finished=old.finished, status=old.status, config=config,
        environment=environment, results=old.results,
    )
