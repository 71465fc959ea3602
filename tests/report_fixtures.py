"""Synthetic runs for the report tests, written exactly as the runner writes them (RunRecord.to_json).

``make_run`` builds a run whose medians are known in advance (``cost_ms``): time grows with batch size and
shrinks with threads, a ``fast`` variant is 0.7x the default, the GPU is 20x faster than one CPU thread.
Samples are a fixed symmetric spread around the median, so the stored median equals ``cost_ms`` exactly
and every test can compute the expected table cell by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dlbench.cases.spec import Case
from dlbench.record.results import FAILED, OK, TIMEOUT, CaseResult, Memory
from dlbench.record.store import RunRecord, RunStore
from tests.record_fixtures import config
from tests.record_fixtures import environment as typed_environment

MiB = 2**20
SPREAD = (0.98, 0.99, 1.0, 1.01, 1.02)  # median 1.0, tight: not noisy
# Plugin-like framework names that no installed adapter claims: their default variant is then the one
# measured most often (ties: alphabetical), i.e. "default" before "fast", independent of the registry.
BASE_MS = {"alpha": 2.0, "beta": 3.0, "gamma": 4.0, "fake": 2.5}
PASS_FACTOR = {"forward": 1.0, "gradient": 3.0}


def cost_ms(framework: str, pass_: str, batch: int, threads: int, device: str = "cpu",
            variant: str = "default") -> float:
    """The median a fixture case is given (exactly representable after rounding to 4 digits)."""
    ms = BASE_MS[framework] * PASS_FACTOR[pass_] * batch / 64 / threads
    if variant == "fast":
        ms *= 0.7
    if device == "gpu":
        ms /= 20
    return round(ms, 4)


def make_result(case: Case, status: str = OK, error: str = "") -> CaseResult:
    if status != OK:
        return CaseResult(case=case, status=status, error=error)
    median = cost_ms(case.framework, case.pass_, case.batch_size, case.threads, case.device, case.variant)
    return CaseResult(
        case=case, status=OK, samples_ms=tuple(median * f for f in SPREAD), iterations_per_sample=4,
        first_call_ms=50.0, params=431080, macs=2293000,
        memory=Memory(peak_rss=(300 + case.batch_size) * MiB, baseline_rss=300 * MiB,
                      device_peak=(20 + case.batch_size) * MiB if case.device == "gpu" else None),
        threads_effective=case.threads, affinity=tuple(range(case.threads)), cpu_per_wall=float(case.threads),
    )


def make_environment(hostname: str = "bench-1", calibration: dict[str, float] | None = None,
                     gpus: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    env: dict[str, Any] = {
        "host": {"hostname": hostname, "os": "Linux 6.1", "kernel": "#1 SMP", "machine": "x86_64",
                 "python": "3.11.7", "cpu_model": "AMD EPYC 7B13", "cpu_logical": 2, "cpu_physical": 2,
                 "memory_gb": 23.5, "affinity": [0, 1]},
        "gpus": list(gpus), "git": {"commit": "0123456789abcdef0123", "dirty": False},
        "packages": {"numpy": "2.4.6", "matplotlib": "3.11.2"},
        "frameworks": {name: {"framework": name, "version": f"{name}-1.0", "threads": 1, "devices": ["cpu"],
                              "backends": {"blas": "openblas"}, "settings": {}} for name in BASE_MS},
    }
    if calibration:
        env["calibration"] = {k: {"gflops": v, "size": 256} for k, v in calibration.items()}
    return env


def cases(workloads: Iterable[tuple[str, str]] = (("lenet", ""),),
          frameworks: Iterable[str] = ("alpha", "beta"), batches: Iterable[int] = (16, 64),
          threads: Iterable[int] = (1, 2), device: str = "cpu",
          variants: Iterable[str] = ("default",)) -> list[Case]:
    return [Case(workload, phase, pass_, framework, variant, device, t, b)
            for workload, phase in workloads for framework in frameworks for variant in variants
            for t in threads for b in batches for pass_ in ("forward", "gradient")]


def make_run(directory: Path, case_list: Iterable[Case], *, run_id: str = "20260101-000000-abcd",
             environment: dict[str, Any] | None = None, failures: dict[str, tuple[str, str]] | None = None,
             ) -> Path:
    """Write a run directory (run.json + results.csv) through the real store. ``failures`` maps a case key
    to (status, error) for cases that should not have a timing."""
    failures = failures or {}
    case_list = list(case_list)
    record = RunRecord(run_id=run_id, created="2026-01-01T00:00:00+00:00",
                       environment=typed_environment(environment or make_environment()),
                       config=config(case_list, suite="test"))
    store = RunStore.open(directory, record)
    try:
        for case in case_list:
            status, error = failures.get(case.key, (OK, ""))
            store.add(make_result(case, status, error))
        store.finish("complete")
    finally:
        store.close()
    return directory


__all__ = ["FAILED", "TIMEOUT", "cases", "cost_ms", "make_environment", "make_result", "make_run"]
