"""The environment beside the numbers: one column per run, one row per fact (CPU, GPU, versions, ...).

The study's lesson is that a time means nothing without the versions, library backends and hardware that
produced it, so every report opens with them. Environment records come from older or partial runs too,
so every key is optional and any JSON value is shown as text (the HTML layer escapes it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from dlbench.formatting import MISSING
from dlbench.report.data import LoadedRun, lookup
from dlbench.report.tables import Cell, Table

Fact = Callable[[LoadedRun], str]
BUSY_FRACTION = 0.8  # a pinned BLAS kernel keeps its N cores busy: CPU time / wall time is about N


def text(value: Any) -> str:
    """A JSON value as one readable line: dicts as ``k=v``, lists comma-separated, absent as a dash."""
    if value is None or value == "" or value == [] or value == {}:
        return MISSING
    if isinstance(value, dict):
        return ", ".join(f"{k}={text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value)
    return str(value)


def _host(key: str) -> Fact:
    return lambda run: text(lookup(run.record.environment, "host", key))


def _cores(run: LoadedRun) -> str:
    host = lookup(run.record.environment, "host") or {}
    logical, physical = lookup(host, "cpu_logical"), lookup(host, "cpu_physical")
    affinity = lookup(host, "affinity")
    parts = [f"{logical} logical" if logical else "", f"{physical} physical" if physical else "",
             f"affinity {text(affinity)}" if affinity else ""]
    return ", ".join(p for p in parts if p) or MISSING


def _memory(run: LoadedRun) -> str:
    value = lookup(run.record.environment, "host", "memory_gb")
    return f"{value} GiB" if value not in (None, "") else MISSING


def _gpus(run: LoadedRun) -> str:
    gpus = lookup(run.record.environment, "gpus")
    if not isinstance(gpus, list) or not gpus:
        return "none"
    return "; ".join(_gpu(g) for g in gpus)


GPU_DETAILS = (("uuid", "{}"), ("pci_bus_id", "bus {}"), ("compute_capability", "compute capability {}"),
               ("cuda_driver", "CUDA {}"), ("mig_mode", "MIG {}"), ("persistence_mode", "persistence {}"),
               ("power_limit_w", "power limit {} W"))


def _gpu(gpu: Any) -> str:
    """One GPU as NVML described it; what it refused to say is named as missing, not left silent."""
    parts = [f"{lookup(gpu, 'memory_mb') or '?'} MB", f"driver {lookup(gpu, 'driver') or '?'}"]
    parts += [form.format(text(lookup(gpu, key))) for key, form in GPU_DETAILS if lookup(gpu, key) not in (None, "")]
    errors = lookup(gpu, "errors")
    if isinstance(errors, dict) and errors:
        parts.append(f"not readable: {', '.join(sorted(map(str, errors)))}")
    return f"{lookup(gpu, 'name') or 'GPU'} ({', '.join(parts)})"


def _gpu_calibration(run: LoadedRun) -> str:
    found = lookup(run.record.environment, "calibration_gpu")
    if not isinstance(found, dict) or not found:
        return "not calibrated"
    parts = []
    for precision, entry in found.items():
        gflops = lookup(entry, "gflops")
        shown = f"{gflops:.0f}" if isinstance(gflops, int | float) else text(gflops)
        parts.append(f"{precision}: {shown} GFLOP/s ({text(lookup(entry, 'library'))})")
    return "; ".join(parts)


def _git(run: LoadedRun) -> str:
    git = lookup(run.record.environment, "git")
    commit = lookup(git, "commit")
    if not commit:
        return MISSING
    return f"{str(commit)[:12]}{' (dirty)' if lookup(git, 'dirty') else ''}"


def _calibration(run: LoadedRun) -> str:
    calibration = lookup(run.record.environment, "calibration")
    if not isinstance(calibration, dict) or not calibration:
        return "not calibrated"
    parts = []
    for threads, entry in sorted(calibration.items(), key=lambda kv: (len(kv[0]), kv[0])):
        gflops = lookup(entry, "gflops")
        shown = f"{gflops:.1f}" if isinstance(gflops, int | float) else text(gflops)
        parts.append(f"{threads} thread(s): {shown} GFLOP/s{_busy(threads, lookup(entry, 'cpu_per_wall'))}")
    return "; ".join(parts)


def _precision_calibration(run: LoadedRun) -> str:
    """The low-precision peaks (bf16, fp16: measured with PyTorch), with float32 of the same library."""
    found = lookup(run.record.environment, "calibration_precisions")
    if not isinstance(found, dict) or not found:
        return "not calibrated"
    parts = []
    for precision, by_threads in sorted(found.items()):
        if not isinstance(by_threads, dict):
            continue
        for threads, entry in sorted(by_threads.items(), key=lambda kv: (len(kv[0]), kv[0])):
            gflops, same = lookup(entry, "gflops"), lookup(entry, "float32_same_library_gflops")
            shown = f"{gflops:.1f}" if isinstance(gflops, int | float) else text(gflops)
            versus = f" (float32 {same:.1f} with {text(lookup(entry, 'library'))})" if isinstance(
                same, int | float) else ""
            parts.append(f"{precision}, {threads} thread(s): {shown} GFLOP/s{versus}"
                         f"{_busy(threads, lookup(entry, 'cpu_per_wall'))}")
    return "; ".join(parts) or "not calibrated"


def _busy(threads: str, cpu_per_wall: Any) -> str:
    """A calibration that got much less CPU than its threads (another process competed) understates the
    peak, and every "% of peak" with it: say so beside the number."""
    if not isinstance(cpu_per_wall, int | float) or not threads.isdigit():
        return ""
    if cpu_per_wall < BUSY_FRACTION * int(threads):
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
    ("dlbench", lambda run: text(lookup(run.record.environment, "dlbench"))),
    ("git commit", _git),
    ("matmul peak (float32)", _calibration),
    ("matmul peak (low precision)", _precision_calibration),
    ("matmul peak (GPU)", _gpu_calibration),
)


def _framework(name: str) -> Fact:
    def fact(run: LoadedRun) -> str:
        info = lookup(run.record.environment, "frameworks", name)
        if not isinstance(info, dict):
            return MISSING
        parts = [f"version {text(info.get('version'))}"]
        for key in ("threads", "devices", "backends", "settings"):
            if info.get(key) not in (None, "", [], {}):
                parts.append(f"{key}: {text(info[key])}")
        return "; ".join(parts)

    return fact


def environment_table(runs: Sequence[LoadedRun]) -> Table:
    """Runs side by side: the facts above, then one row per framework any run used."""
    frameworks: dict[str, None] = {}
    for run in runs:
        found = lookup(run.record.environment, "frameworks")
        frameworks.update(dict.fromkeys(found if isinstance(found, dict) else {}))
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
        packages = lookup(run.record.environment, "packages")
        names.update(dict.fromkeys(packages if isinstance(packages, dict) else {}))
    values = [[text(lookup(run.record.environment, "packages", name)) for run in runs] for name in names]
    rows = tuple(tuple([Cell(name), *(Cell(v) for v in row)])
                 for name, row in zip(names, values, strict=True))
    data = pd.DataFrame([[name, *row] for name, row in zip(names, values, strict=True)],
                        columns=["package", *(run.label for run in runs)])
    return Table("packages", "Package versions", "Versions of the installed packages dlbench records.",
                 ("package", *(run.label for run in runs)), rows, data)
