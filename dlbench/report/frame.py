"""The report's single source of numbers: stored runs flattened into one table of result rows.

Every number a report shows is taken from :func:`dlbench.record.metrics.result_row`, the very function that
writes a run's ``results.csv``, so a report can never disagree with the stored results (the tests check
it); its values are numbers or ``None``, never text to parse back. On top of those columns this module
adds only labels the tables and plots group by: which run, which setting ("CPU, 2 threads" or "GPU"),
which series ("torch [channels_last]") and the calibrated machine peak.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from dlbench.errors import DlbenchError
from dlbench.machine.telemetry import throttled
from dlbench.record.metrics import CSV_COLUMNS, NUMERIC_COLUMNS, csv_fields, result_row
from dlbench.record.results import CaseResult
from dlbench.record.store import RunRecord, load_run
from dlbench.workloads import networks

FRAMEWORK_ORDER = {"torch": 0, "tensorflow": 1, "jax": 2}  # the README's order; plugins follow by name
PASS_ORDER = {"gradient": 0, "forward": 1}  # Table 3 of the study shows gradient first


@dataclass(frozen=True)
class LoadedRun:
    """A stored run and the label that names it in a combined report."""

    label: str
    record: RunRecord

    @property
    def hostname(self) -> str:
        return self.record.environment.host.hostname.strip()

    def peak_gflops(self, device: str, threads: int, precision: str = "float32") -> float | None:
        """The calibrated matrix-multiply peak of ``precision`` for a CPU thread count, or of the GPU, if the
        run recorded one: GFLOP/s of a bf16 case are judged against the bf16 peak, never the float32 one."""
        if device == "gpu":
            value = self.record.environment.calibration_gpu.get(precision or "float32", {}).get("gflops")
            return float(value) if isinstance(value, int | float) and value > 0 else None
        if device != "cpu":
            return None
        environment = self.record.environment
        peaks = environment.calibration if precision in ("", "float32") else \
            environment.calibration_precisions.get(precision, {})
        entry = peaks.get(threads)
        return entry.gflops if entry is not None else None


def load_runs(run_dirs: Sequence[Path]) -> list[LoadedRun]:
    """Load and label runs. Labels are ``hostname / run_id`` and made unique, so that two runs of one
    machine, or one run given twice, still read apart in every table."""
    if not run_dirs:
        raise DlbenchError("no run directories given to report on")
    runs: list[LoadedRun] = []
    seen: Counter[str] = Counter()
    for path in run_dirs:
        run = LoadedRun("", load_run(path))
        base = f"{run.hostname} / {run.record.run_id}" if run.hostname else run.record.run_id
        seen[base] += 1
        runs.append(replace(run, label=base if seen[base] == 1 else f"{base} #{seen[base]}"))
    return runs


def setting_label(device: str, threads: int) -> str:
    """The study's row groups: "CPU, 1 thread", "CPU, 6 threads", "GPU"."""
    if device == "cpu":
        return f"CPU, {threads} thread{'s' if threads != 1 else ''}"
    return device.upper()


def series_label(framework: str, variant: str, precision: str, conv: str = "native") -> str:
    """One line of a plot / one row of a table: ``torch [channels_last]``; precision only if not float32,
    the convolution algorithm only if not native (``torch [eager, bf16, fft]``)."""
    parts = [p for p in (variant, "" if precision in ("", "float32") else precision,
                         "" if conv in ("", "native") else conv) if p]
    detail = ", ".join(parts)
    return f"{framework} [{detail}]" if detail else framework


def workload_label(workload: str, phase: str) -> str:
    return f"{workload}/{phase}" if phase else workload


def default_variants(frameworks: Iterable[str], frame: pd.DataFrame,
                     recorded: dict[str, str] | None = None) -> dict[str, str]:
    """The default variant of each framework: as the run recorded it (``config.default_variants``), else the
    registered adapter's ``default_variant``; for a framework whose adapter is not installed here, the
    variant it was measured with most often."""
    from dlbench.frameworks.registry import get_adapter  # adapters import no framework at module level

    found: dict[str, str] = {}
    for name in frameworks:
        if recorded and name in recorded:
            found[name] = str(recorded[name])
            continue
        try:
            found[name] = str(get_adapter(name).default_variant)
            continue
        except (DlbenchError, ImportError, AttributeError):
            pass
        counts = Counter(frame.loc[frame["framework"] == name, "variant"])
        found[name] = min(counts, key=lambda v: (-counts[v], v)) if counts else ""
    return found


def _rows(runs: Sequence[LoadedRun]) -> Iterator[tuple[int, LoadedRun, CaseResult, dict[str, Any]]]:
    """Every stored result with its CSV row, exactly as ``results.csv`` of its run holds it."""
    for order, run in enumerate(runs):
        versions = run.record.framework_versions()
        for result in run.record.results:
            version = versions.get(result.case.framework, "")
            yield order, run, result, result_row(run.record.run_id, result, version)


def combined_csv(runs: Sequence[LoadedRun]) -> str:
    """The stored ``results.csv`` rows of all runs in one file, each prefixed with its run's label."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=("run", *CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for _, run, _, row in _rows(runs):
        writer.writerow({"run": run.label, **csv_fields(row)})
    return out.getvalue()


def results_frame(runs: Sequence[LoadedRun]) -> pd.DataFrame:
    """All results of all runs as one DataFrame: the stored CSV columns plus the report's labels."""
    rows: list[dict[str, Any]] = []
    for order, run, result, row in _rows(runs):
        case = result.case
        row.update(
            run=run.label, run_order=order, hostname=run.hostname,
            setting=setting_label(case.device, case.threads),
            workload_label=workload_label(case.workload, case.phase),
            series=series_label(case.framework, case.variant, case.precision, case.conv),
            peak_gflops=run.peak_gflops(case.device, case.threads, case.precision),
            gpu_throttled=throttled(result.gpu_telemetry),
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for column in (*NUMERIC_COLUMNS, "peak_gflops"):  # None -> NaN, so that columns are numeric
        frame[column] = pd.to_numeric(frame[column])
    frame["noisy"] = frame["noisy"].map(lambda v: v is True)
    frame["peak_fraction"] = frame["gflops_per_s"] / frame["peak_gflops"]
    # What "memory" means in plots and tables: on a GPU the allocator's peak; on the CPU what the case
    # added to the worker's resident set (absolute RSS is dominated by the framework's import).
    gpu = frame["device"] != "cpu"
    frame["memory_mb"] = frame["rss_rise_mb"].where(~gpu, frame["device_peak_mb"])
    recorded: dict[str, str] = {}
    for run in runs:
        recorded.update(run.record.config.default_variants)
    defaults = default_variants(frame["framework"].unique(), frame, recorded)
    frame["default_variant"] = [defaults.get(f) == v for f, v in zip(frame["framework"], frame["variant"],
                                                                        strict=True)]
    return sort_frame(frame)


def sort_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The order every table uses: run, workload (definition order), phase, device (CPU first), threads,
    framework (torch, tensorflow, jax, plugins), default variant first, pass, batch size."""
    registered = networks()  # built-ins in their order, then the installed plugins
    workload_rank = {name: i for i, name in enumerate(registered)}
    phase_rank = {(w.name, p): i for w in registered.values() for i, p in enumerate(w.phase_names)}
    keys = pd.DataFrame({
        "run": frame["run_order"],
        "workload": frame["workload"].map(lambda w: workload_rank.get(w, len(workload_rank))),
        "workload_name": frame["workload"],
        "phase": [phase_rank.get((w, p), 99) for w, p in zip(frame["workload"], frame["phase"], strict=True)],
        "phase_name": frame["phase"],
        "device": frame["device"].map(lambda d: 0 if d == "cpu" else 1),
        "threads": frame["threads"],
        "framework": frame["framework"].map(lambda f: FRAMEWORK_ORDER.get(f, len(FRAMEWORK_ORDER))),
        "framework_name": frame["framework"],
        "default": ~frame["default_variant"],
        "variant": frame["variant"],
        "precision": frame["precision"],
        "pass": frame["pass"].map(lambda p: PASS_ORDER.get(p, len(PASS_ORDER))),
        "pass_name": frame["pass"],
        "batch": frame["batch_size"],
    })
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def passes_in(frame: pd.DataFrame) -> list[str]:
    """The passes present, gradient and forward first (extensions such as train_step after them)."""
    return sorted(frame["pass"].unique(), key=lambda p: (PASS_ORDER.get(p, len(PASS_ORDER)), p))
