"""The environment beside the numbers: one column per run, one row per fact (CPU, GPU, versions, ...).

The study's lesson is that a time means nothing without the versions, library backends and hardware that
produced it, so every report opens with them. The record is typed (:class:`dlbench.record.schema.Environment`);
fields that a partial run left empty show as a dash. The HTML layer escapes every value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from dlbench.formatting import MISSING
from dlbench.record.schema import FrameworkRuntime, GpuInfo
from dlbench.report.frame import LoadedRun
from dlbench.report.tables import Cell, Table

Fact = Callable[[LoadedRun], str]
BUSY_FRACTION = 0.8  # a pinned BLAS kernel keeps its N cores busy: CPU time / wall time is about N


def text(value: Any) -> str:
    """A value as one readable line: dicts as ``k=v``, lists comma-separated, absent as a dash."""
    if value is None or value == "" or value == [] or value == () or value == {}:
        return MISSING
    if isinstance(value, dict):
        return ", ".join(f"{k}={text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value)
    return str(value)


def _host(key: str) -> Fact:
    return lambda run: text(getattr(run.record.environment.host, key))


def _cores(run: LoadedRun) -> str:
    host = run.record.environment.host
    parts = [f"{host.cpu_logical} logical" if host.cpu_logical else "",
             f"{host.cpu_physical} physical" if host.cpu_physical else "",
             f"affinity {text(host.affinity)}" if host.affinity else ""]
    return ", ".join(p for p in parts if p) or MISSING


def _memory(run: LoadedRun) -> str:
    value = run.record.environment.host.memory_gb
    return f"{value} GiB" if value is not None else MISSING


def _gpus(run: LoadedRun) -> str:
    gpus = run.record.environment.gpus
    if not gpus:
        return "none"
    return "; ".join(_gpu(g) for g in gpus)


GPU_DETAILS = (("uuid", "{}"), ("pci_bus_id", "bus {}"), ("compute_capability", "compute capability {}"),
               ("cuda_driver", "CUDA {}"), ("mig_mode", "MIG {}"), ("persistence_mode", "persistence {}"),
               ("power_limit_w", "power limit {} W"))


def _gpu(gpu: GpuInfo) -> str:
    """One GPU as NVML described it; what it refused to say is named as missing, not left silent."""
    parts = [f"{gpu.memory_mb if gpu.memory_mb is not None else '?'} MB", f"driver {gpu.driver or '?'}"]
    values = [(getattr(gpu, key), form) for key, form in GPU_DETAILS]
    parts += [form.format(text(value)) for value, form in values if value not in (None, "")]
    if gpu.errors:
        parts.append(f"not readable: {', '.join(sorted(gpu.errors))}")
    return f"{gpu.name or 'GPU'} ({', '.join(parts)})"


def _gpu_calibration(run: LoadedRun) -> str:
    found = run.record.environment.calibration_gpu
    if not found:
        return "not calibrated"
    parts = []
    for precision, entry in found.items():
        gflops = entry.get("gflops")
        shown = f"{gflops:.0f}" if isinstance(gflops, int | float) else text(gflops)
        parts.append(f"{precision}: {shown} GFLOP/s ({text(entry.get('library'))})")
    return "; ".join(parts)


def _git(run: LoadedRun) -> str:
    git = run.record.environment.git
    if not git.commit:
        return MISSING
    return f"{git.commit[:12]}{' (dirty)' if git.dirty else ''}"


def _calibration(run: LoadedRun) -> str:
    calibration = run.record.environment.calibration
    if not calibration:
        return "not calibrated"
    return "; ".join(f"{threads} thread(s): {entry.gflops:.1f} GFLOP/s{_busy(threads, entry.cpu_per_wall)}"
                     for threads, entry in sorted(calibration.items()))


def _precision_calibration(run: LoadedRun) -> str:
    """The low-precision peaks (bf16, fp16: measured with PyTorch), with float32 of the same library."""
    parts = []
    for precision, by_threads in sorted(run.record.environment.calibration_precisions.items()):
        for threads, entry in sorted(by_threads.items()):
            same = entry.float32_same_library_gflops
            versus = f" (float32 {same:.1f} with {text(entry.library)})" if same is not None else ""
            parts.append(f"{precision}, {threads} thread(s): {entry.gflops:.1f} GFLOP/s{versus}"
                         f"{_busy(threads, entry.cpu_per_wall)}")
    return "; ".join(parts) or "not calibrated"


def _busy(threads: int, cpu_per_wall: float | None) -> str:
    """A calibration that got much less CPU than its threads (another process competed) understates the
    peak, and every "% of peak" with it: say so beside the number."""
    if cpu_per_wall is not None and cpu_per_wall < BUSY_FRACTION * threads:
        return f" (machine busy: CPU/wall {cpu_per_wall:.2f})"
    return ""


FACTS: tuple[tuple[str, Fact], ...] = (
    ("run id", lambda run: run.record.run_id),
    ("started", lambda run: text(run.record.created)),
    ("finished", lambda run: text(run.record.finished)),
    ("status", lambda run: text(run.record.status)),
    ("cases", lambda run: f"{sum(r.ok for r in run.record.results)} timed of {len(run.record.results)}"),
    ("host", _host("hostname")),
    ("CPU", _host("cpu_model")),
    ("CPU features", _host("cpu_flags")),
    ("cores", _cores),
    ("memory", _memory),
    ("GPU", _gpus),
    ("OS", _host("os")),
    ("kernel", _host("kernel")),
    ("Python", _host("python")),
    ("dlbench", lambda run: text(run.record.environment.dlbench)),
    ("git commit", _git),
    ("matmul peak (float32)", _calibration),
    ("matmul peak (low precision)", _precision_calibration),
    ("matmul peak (GPU)", _gpu_calibration),
)


def _framework(name: str) -> Fact:
    def fact(run: LoadedRun) -> str:
        info: FrameworkRuntime | None = run.record.environment.frameworks.get(name)
        if info is None:
            return MISSING
        parts = [f"version {text(info.version)}"]
        for key in ("threads", "devices", "backends", "settings"):
            value = getattr(info, key)
            if value not in (None, "", (), {}):
                parts.append(f"{key}: {text(value)}")
        return "; ".join(parts)

    return fact


def environment_table(runs: Sequence[LoadedRun]) -> Table:
    """Runs side by side: the facts above, then one row per framework any run used."""
    frameworks: dict[str, None] = {}
    for run in runs:
        frameworks.update(dict.fromkeys(run.record.environment.frameworks))
        frameworks.update(dict.fromkeys(r.case.framework for r in run.record.results))
    facts = (*FACTS, *((name, _framework(name)) for name in frameworks))
    values = [[fact(run) for run in runs] for _, fact in facts]
    rows = tuple(tuple([Cell(label), *(Cell(v, muted=v == MISSING) for v in row)])
                 for (label, _), row in zip(facts, values, strict=True))
    header = ("", *(run.label for run in runs))
    data = pd.DataFrame([[label, *row] for (label, _), row in zip(facts, values, strict=True)],
                        columns=["fact", *(run.label for run in runs)])
    caption = "Each run's machine, versions and library backends, as recorded when it ran."
    return Table("environment", "Runs and environment", caption, header, rows, data)


def packages_table(runs: Sequence[LoadedRun]) -> Table:
    """Installed package versions per run (from the environment record's ``packages``)."""
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(run.record.environment.packages))
    values = [[text(run.record.environment.packages.get(name)) for run in runs] for name in names]
    rows = tuple(tuple([Cell(name), *(Cell(v) for v in row)])
                 for name, row in zip(names, values, strict=True))
    data = pd.DataFrame([[name, *row] for name, row in zip(names, values, strict=True)],
                        columns=["package", *(run.label for run in runs)])
    return Table("packages", "Package versions", "Versions of the installed packages dlbench records.",
                 ("package", *(run.label for run in runs)), rows, data)
