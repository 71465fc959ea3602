"""Typed pieces of a run record for the synthetic runs of the tests (see dlbench/record/schema.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from dlbench.cases.spec import Case
from dlbench.measure.timing import MeasureConfig
from dlbench.record.schema import Environment, RunConfig, SuiteRecord


def environment(data: dict[str, Any]) -> Environment:
    """An environment from the dict a test writes; ``frameworks`` (name -> runtime) become workers."""
    values = dict(data)
    workers = dict(values.pop("workers", {}))
    for name, runtime in values.pop("frameworks", {}).items():
        workers.setdefault(f"{name}/cpu/t1", runtime)
    return msgspec.convert({**values, "workers": workers}, Environment, strict=False)  # "1" -> 1 (threads)


def config(cases: Iterable[Case] = (), suite: str = "synthetic", measure: MeasureConfig | None = None,
           **extra: Any) -> RunConfig:
    return RunConfig(suite=SuiteRecord(name=suite), cases=tuple(cases), measure=measure or MeasureConfig(), **extra)
