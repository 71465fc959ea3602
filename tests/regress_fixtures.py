"""Synthetic runs for the compare, history and export tests: CaseResult/RunRecord objects built in memory
and written exactly as the runner writes them (RunRecord.to_json), so the commands read real files.

Noise model of ``noisy_samples``: log-normal per-iteration times (a multiplicative jitter, as timing noise
is) plus occasional outliers 1.3-3x slower (preemptions by other processes on a shared CI machine).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dlbench import cli
from dlbench.cases.spec import Case
from dlbench.record.results import OK, CaseResult, Memory
from dlbench.record.store import RunRecord
from tests.record_fixtures import config
from tests.record_fixtures import environment as typed_environment

MiB = 2**20


def make_case(workload: str = "lenet", pass_: str = "forward", framework: str = "torch", threads: int = 1,
              batch_size: int = 64, phase: str = "", variant: str = "default") -> Case:
    return Case(workload=workload, phase=phase, pass_=pass_, framework=framework, variant=variant,
                device="cpu", threads=threads, batch_size=batch_size)


def noisy_samples(rng: np.random.Generator, n: int, median: float, sigma: float = 0.05,
                  outlier_rate: float = 0.05) -> list[float]:
    x = median * rng.lognormal(0.0, sigma, size=n)
    outliers = rng.random(n) < outlier_rate
    x[outliers] *= rng.uniform(1.3, 3.0, size=int(outliers.sum()))
    return [float(v) for v in x]


QUIET = (10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.05)


def make_result(case: Case | None = None, samples: Sequence[float] = QUIET, status: str = OK,
                rise_mib: float | None = 100.0, error: str = "", **extra: Any) -> CaseResult:
    """An ok result (or a failed one without samples) whose RSS rose by ``rise_mib`` over a 200 MiB base."""
    memory = Memory()
    if rise_mib is not None:
        memory = Memory(peak_rss=int((200 + rise_mib) * MiB), baseline_rss=200 * MiB)
    fields: dict[str, Any] = {"threads_effective": 1, **extra}
    return CaseResult(
        case=case or make_case(), status=status, error=error,
        samples_ms=tuple(samples) if status == OK else (), iterations_per_sample=1 if status == OK else 0,
        memory=memory if status == OK else Memory(), **fields,
    )


def make_environment(**host: Any) -> dict[str, Any]:
    base_host = {"hostname": "ci-1", "cpu_model": "AMD EPYC", "cpu_logical": 2, "machine": "x86_64",
                 "python": "3.11.7"}
    base_host.update(host)
    return {
        "host": base_host, "gpus": [], "git": {},
        "frameworks": {"torch": {"framework": "torch", "version": "2.13.0"}},
    }


def make_run(run_id: str, results: Sequence[CaseResult], environment: dict[str, Any] | None = None,
             created: str = "2026-01-01T00:00:00+00:00") -> RunRecord:
    return RunRecord(
        run_id=run_id, created=created,
        environment=typed_environment(environment if environment is not None else make_environment()),
        config=config([r.case for r in results]), results=list(results), finished=created, status="complete",
    )


def write_run(directory: Path, record: RunRecord) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "run.json").write_text(record.to_json(), encoding="utf-8")
    return directory


def dlbench_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the real ``dlbench`` entry point in-process (its error mapping included) with the regression
    commands registered, and return the exit code."""
    for name in ("compare", "history", "export"):
        monkeypatch.setitem(cli.COMMANDS, name, f"dlbench.cli.{name}_cmd")
    with pytest.raises(SystemExit) as info:
        cli.main(list(args))
    return int(info.value.code or 0)
