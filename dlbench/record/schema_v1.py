"""Reading version-1 run records (written by dlbench 0.1) into today's :class:`~dlbench.record.schema.RunRecord`.

Version 1 kept the same facts in looser places: the suite repeated the measurement settings and the suite
file's own seed next to the run's seed in ``config``; the environment listed each framework's runtime twice
(``frameworks`` and ``workers``); results repeated their case key. The upgrade keeps every fact a report,
a comparison or a resume uses: the run's (effective) seed, the measurement settings, the planned cases, the
memory limit, every worker's runtime, the calibration, all results with their raw samples.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from dlbench.cases.spec import Case, Name, Seed
from dlbench.measure.timing import MeasureConfig
from dlbench.record.results import CaseResult
from dlbench.record.schema import (
    Environment,
    EnvironmentRuntime,
    ExecutorConfig,
    FrameworkRuntime,
    MemoryLimitMb,
    PythonEnvironment,
    RunConfig,
    RunRecord,
    RunStatus,
    SuiteRecord,
)


class SuiteExecutorV1(msgspec.Struct, frozen=True):
    resources: dict[str, Annotated[float, msgspec.Meta(ge=0, le=1e12)]] = {}


class SuiteV1(SuiteRecord, frozen=True):
    precision: str | tuple[str, ...] = "float32"  # one precision in 0.1, a list since mixed precision
    measure: MeasureConfig | None = None
    seed: int | None = None  # the suite file's seed; the run's own seed is config.seed
    executor: SuiteExecutorV1 = SuiteExecutorV1()  # the Ray resources a node needs (fleet runs)

    @property
    def planned_precisions(self) -> tuple[str, ...]:
        return (self.precision,) if isinstance(self.precision, str) else self.precision


class ConfigV1(msgspec.Struct, frozen=True):
    cases: tuple[Case, ...]
    measure: MeasureConfig
    seed: Seed = 0
    memory_limit_mb: MemoryLimitMb | None = None
    default_variants: dict[str, str] = {}
    command: tuple[str, ...] = ()
    executor: ExecutorConfig = ExecutorConfig()  # fleet runs
    environments: tuple[PythonEnvironment, ...] = ()  # A/B runs (--python)
    control: bool = False  # the drift control (--repeat)


class EnvironmentRuntimeV1(EnvironmentRuntime, frozen=True):
    frameworks_v1: dict[str, FrameworkRuntime] = msgspec.field(default={}, name="frameworks")


class EnvironmentV1(Environment, frozen=True):
    frameworks_v1: dict[str, FrameworkRuntime] = msgspec.field(default={}, name="frameworks")
    environments: dict[str, EnvironmentRuntimeV1] = {}  # type: ignore[assignment]  # also each one's frameworks


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


def with_frameworks(workers: dict[str, FrameworkRuntime],
                    frameworks: dict[str, FrameworkRuntime]) -> dict[str, FrameworkRuntime]:
    """Version 1's workers plus, under the framework's name, any framework that no listed worker covers."""
    found = dict(workers)
    covered = {runtime.framework for runtime in found.values()}
    for name, runtime in frameworks.items():
        if name not in covered:
            found[name] = runtime
    return found


def upgrade(old: RunRecordV1) -> RunRecord:
    """The version-2 record holding the same facts."""
    suite_fields = {f: getattr(old.suite, f) for f in SuiteRecord.__struct_fields__}
    suite = SuiteRecord(**{**suite_fields, "precisions": old.suite.planned_precisions,
                           "resources": old.suite.resources or old.suite.executor.resources})
    config = RunConfig(
        suite=suite, cases=old.config.cases, measure=old.config.measure,
        seed=old.config.seed, memory_limit_mb=old.config.memory_limit_mb,
        default_variants=old.config.default_variants, command=old.config.command,
        executor=old.config.executor, environments=old.config.environments, control=old.config.control,
    )
    env_fields = {f: getattr(old.environment, f) for f in Environment.__struct_fields__}
    environments = {name: EnvironmentRuntime(workers=with_frameworks(section.workers, section.frameworks_v1))
                    for name, section in old.environment.environments.items()}
    environment = Environment(**{**env_fields, "environments": environments,
                                 "workers": with_frameworks(old.environment.workers, old.environment.frameworks_v1)})
    return RunRecord(
        run_id=old.run_id, created=old.created, finished=old.finished, status=old.status, config=config,
        environment=environment, results=old.results,
    )
