"""``dlbench doctor``: is this machine ready to benchmark, and (``--device gpu``) do the GPU paths hold?

Without options it is cheap (nothing is started): Python, cores, each registered framework with its version and
whether its build can use a GPU, broken plugins, the GPUs NVML sees. With ``--device gpu`` it is the check to
run on the first real GPU machine: NVML's view of each GPU, other processes on it, each framework started on
the GPU (the plan's probe, :mod:`dlbench.plan.gpu_probe`), then the smoke suite run on the GPU by the real
``dlbench run`` in a subprocess, and the invariants its record must satisfy:

* exit code: 0 exactly when no row failed, 1 when one did;
* GPU rows really ran (not all ``unavailable``), each with a device memory peak, and the peak is reset
  between cases (a counter stuck at the worker's largest case repeats that value for every later workload);
* TF32 off: every framework reports ``tf32 = off`` or ``highest`` float32 matmul precision, and no float32
  row computed its matmuls in TF32;
* one GPU used: every GPU worker saw exactly one GPU, the same one;
* telemetry: GPU rows carry NVML telemetry; a throttled case is a warning.

It prints one line per check (``PASS``/``FAIL``/``WARN``/``INFO``) and exits 1 when any check failed. Where no
GPU exists it says so in one line and exits 2. Not run on real GPU hardware yet.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from dlbench import __version__
from dlbench.cli.options import CommaList, flatten
from dlbench.cli.paths import NonEmptyPath
from dlbench.display.progress import out
from dlbench.display.terminal import plain
from dlbench.errors import DlbenchError
from dlbench.frameworks.base import Adapter
from dlbench.frameworks.registry import broken_adapters, get_adapter, installed_adapters
from dlbench.machine.nvml import describe_processes, gpu_processes, nvml_gpus
from dlbench.machine.telemetry import throttled
from dlbench.process.placement import available_cores
from dlbench.record.results import CaseResult
from dlbench.record.store import RunRecord, load_run

PASS, FAIL, WARN, INFO = "PASS", "FAIL", "WARN", "INFO"
STYLES = {PASS: "green", FAIL: "bold red", WARN: "yellow", INFO: ""}
FAILED_STATUSES = ("failed", "crashed", "timeout", "oom")


@dataclass(frozen=True)
class Check:
    verdict: str  # PASS | FAIL | WARN | INFO
    text: str


def cpu_checks(adapters: list[Adapter]) -> list[Check]:
    """What costs nothing to find out: interpreter, cores, frameworks and their builds, plugins, GPUs."""
    cores = available_cores()
    checks = [Check(INFO, f"dlbench {__version__}, Python {platform.python_version()} ({sys.executable})"),
              Check(INFO, f"{len(cores)} core(s) available to this process: {', '.join(map(str, cores))}")]
    for name, reason in broken_adapters().items():
        checks.append(Check(FAIL, f"plugin {name}: {reason}"))
    if not adapters:
        checks.append(Check(FAIL, "no framework installed (pip install 'dlbench[torch]', '[tensorflow]', '[jax]')"))
    for adapter in adapters:
        build = "GPU-capable build" if adapter.supports_gpu_build() else "CPU-only build"
        checks.append(Check(PASS, f"{adapter.name} {adapter.version() or '?'} installed ({build})"))
    gpus = nvml_gpus()
    checks.append(Check(INFO, f"NVML: {len(gpus)} GPU(s)" + "".join(f"; {_gpu_line(g)}" for g in gpus)
                        if gpus else "NVML: no GPU (no NVIDIA driver, or no device)"))
    return checks


def _gpu_line(gpu: dict[str, Any]) -> str:
    fields = [f"{gpu.get('name', 'GPU')} [{gpu.get('uuid', 'index ' + str(gpu.get('index')))}]"]
    for key in ("compute_capability", "driver", "cuda_driver", "memory_mb", "mig_mode", "persistence_mode",
                "power_limit_w"):
        if key in gpu:
            fields.append(f"{key}={gpu[key]}")
    return " ".join(fields)


def gpu_setup_checks(adapters: list[Adapter]) -> tuple[list[Check], list[str]]:
    """NVML's view and each framework started on the GPU; returns the checks and the frameworks that work."""
    from dlbench.plan.gpu_probe import probe_gpu

    checks = []
    gpus = list(nvml_gpus())
    for gpu in gpus:
        checks.append(Check(PASS, f"GPU {gpu.get('index')}: {_gpu_line(gpu)}"))
        if gpu.get("errors"):
            checks.append(Check(WARN, f"GPU {gpu.get('index')}: NVML refused {', '.join(sorted(gpu['errors']))}"))
    busy = gpu_processes()
    if busy:
        checks.append(Check(WARN, f"other processes on the GPU: {describe_processes(busy)}"))
    working = []
    for adapter in adapters:
        if not adapter.gpu_usable(gpus):
            checks.append(Check(WARN, f"{adapter.name}: {adapter.version() or '?'} cannot use the GPU "
                                      f"({'no GPU found by NVML' if not gpus else 'CPU-only build'})"))
            continue
        result = probe_gpu(adapter)
        if not result.ok:
            checks.append(Check(FAIL, f"{adapter.name} fails on the GPU: {result.error}"))
            continue
        loaded = result.info.get("loaded", {})
        libraries = ", ".join(f"{k} {v.get('version', '?')}" for k, v in loaded.items() if isinstance(v, dict))
        checks.append(Check(PASS, f"{adapter.name} runs on the GPU" + (f" (loaded: {libraries})" if libraries else "")))
        working.append(adapter.name)
    return checks, working


def run_smoke(frameworks: list[str], directory: Path) -> tuple[int, str, RunRecord | None]:
    """The smoke suite on the GPU with the real command line; (exit code, last stderr line, run record)."""
    command = [sys.executable, "-m", "dlbench", "run", "--suite", "smoke", "--device", "gpu", "--quiet",
               "--framework", ",".join(frameworks), "--output", str(directory)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    record = load_run(directory) if (directory / "run.json").is_file() else None
    return proc.returncode, lines[-1] if lines else "", record


def invariant_checks(code: int, record: RunRecord) -> list[Check]:
    """The invariants of a GPU run's record (see the module docstring)."""
    gpu_rows = [r for r in record.results if r.case.device == "gpu"]
    failed = [r for r in record.results if r.status in FAILED_STATUSES]
    checks = []
    expected = 1 if failed else 0
    if code == expected:
        checks.append(Check(PASS, f"exit code {code} matches the rows ({len(failed)} failed)"))
    else:
        checks.append(Check(FAIL, f"exit code {code}, expected {expected} for {len(failed)} failed row(s)"))
    for row in failed:
        checks.append(Check(FAIL, f"{row.case.key}: {row.status}: {row.error}"))
    ok = [r for r in gpu_rows if r.ok]
    unavailable = [r for r in gpu_rows if r.status == "unavailable"]
    if not ok:
        checks.append(Check(FAIL, f"no GPU row was measured ({len(unavailable)} unavailable of {len(gpu_rows)})"))
        return checks
    checks.append(Check(PASS if not unavailable else WARN,
                        f"{len(ok)} GPU row(s) measured, {len(unavailable)} unavailable"))
    checks += _peak_checks(ok)
    checks += _tf32_checks(record, ok)
    checks += _one_gpu_checks(record)
    with_telemetry = [r for r in ok if r.gpu_telemetry]
    checks.append(Check(PASS if len(with_telemetry) == len(ok) else WARN,
                        f"GPU telemetry on {len(with_telemetry)} of {len(ok)} measured row(s)"))
    hot = [r.case.key for r in ok if throttled(r.gpu_telemetry)]
    if hot:
        checks.append(Check(WARN, f"throttled while timed: {', '.join(hot)}"))
    return checks


def _peak_checks(ok: list[CaseResult]) -> list[Check]:
    missing = [r.case.key for r in ok if not r.memory.device_peak]
    checks = [Check(FAIL if missing else PASS, "device memory peak on every measured GPU row"
                    + (f"; missing: {', '.join(missing)}" if missing else ""))]
    stuck = []
    for framework in sorted({r.case.framework for r in ok}):
        rows = [r for r in ok if r.case.framework == framework and r.memory.device_peak]
        peaks = [int(r.memory.device_peak or 0) for r in rows]
        if len(peaks) < 3:
            continue
        top = peaks.index(max(peaks))
        later = [p for r, p in zip(rows[top + 1:], peaks[top + 1:], strict=True)
                 if r.case.workload != rows[top].case.workload]
        if len(later) >= 2 and all(p == peaks[top] for p in later):
            stuck.append(framework)
    checks.append(Check(FAIL if stuck else PASS, "device peak reset between cases"
                        + (f"; stuck at the largest case for {', '.join(stuck)}" if stuck else "")))
    return checks


def _gpu_workers(record: RunRecord) -> dict[str, dict[str, str]]:
    """The settings of each GPU worker, by worker label (``torch/gpu/t2``)."""
    return {label: dict(runtime.settings) for label, runtime in record.environment.workers.items()
            if "/gpu/" in f"{label}/"}


def _tf32_checks(record: RunRecord, ok: list[CaseResult]) -> list[Check]:
    checks = []
    frameworks = record.environment.frameworks
    for name in sorted({r.case.framework for r in ok}):
        runtime = frameworks.get(name)
        settings = dict(runtime.settings) if runtime is not None else {}
        tf32, precision = settings.get("tf32"), settings.get("matmul_precision")
        if tf32 is None and precision is None:
            checks.append(Check(WARN, f"{name}: records no TF32 setting"))
        elif tf32 not in (None, "off") or precision not in (None, "highest"):
            checks.append(Check(FAIL, f"{name}: TF32 not off (tf32={tf32}, matmul_precision={precision})"))
        else:
            checks.append(Check(PASS, f"{name}: TF32 off"))
    leaked = [r.case.key for r in ok if r.case.precision == "float32" and r.dtypes.get("matmul") == "tf32"]
    if leaked:
        checks.append(Check(FAIL, f"float32 rows computed in TF32: {', '.join(leaked)}"))
    return checks


def _one_gpu_checks(record: RunRecord) -> list[Check]:
    selectors = {label: settings["gpu_selector"] for label, settings in _gpu_workers(record).items()
                 if "gpu_selector" in settings}
    if not selectors:
        return [Check(WARN, "one GPU used: the GPU workers recorded no GPU selector")]
    several = [f"{label}={s}" for label, s in selectors.items() if not s or "," in s]
    if several:
        return [Check(FAIL, f"a GPU worker saw more or less than one GPU: {', '.join(several)}")]
    if len(set(selectors.values())) > 1:
        return [Check(FAIL, f"GPU workers used different GPUs: {selectors}")]
    return [Check(PASS, f"one GPU used by every GPU worker ({next(iter(selectors.values()))})")]


def show(checks: Iterable[Check]) -> bool:
    """Print one line per check; whether none failed."""
    good = True
    for check in checks:
        out.print(plain(f"{check.verdict:4}", STYLES[check.verdict]) + plain(f"  {check.text}"), soft_wrap=True)
        good = good and check.verdict != FAIL
    return good


@click.command("doctor")
@click.option("--device", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="gpu: start each framework on the GPU, run the smoke suite there and check its invariants.")
@click.option("--framework", "-f", "frameworks", multiple=True, type=CommaList(label="framework"),
              help="Frameworks to check (default: every installed one).")
@click.option("--output", type=NonEmptyPath(path_type=Path), default=None,
              help="Keep the GPU smoke run here (default: a temporary directory, removed afterwards).")
def command(device: str, frameworks: tuple[tuple[str, ...], ...], output: Path | None) -> None:
    """Check this machine (and with --device gpu, the GPU paths) and print a pass/fail list."""
    names = flatten(frameworks)
    adapters = [get_adapter(n) for n in names] if names else installed_adapters()
    if device == "cpu":
        raise SystemExit(0 if show(cpu_checks(adapters)) else 1)
    if not nvml_gpus() and not any(a.gpu_usable([]) for a in adapters):
        raise DlbenchError("doctor --device gpu: no GPU here (NVML finds no NVIDIA driver or device)")
    setup, working = gpu_setup_checks(adapters)
    good = show(setup)
    if not working:
        show([Check(FAIL, "no framework runs on the GPU: the smoke suite is not run")])
        raise SystemExit(1)
    with tempfile.TemporaryDirectory(prefix="dlbench-doctor-") as scratch:
        directory = output or Path(scratch) / "smoke"
        out.print(plain(f"running the smoke suite on the GPU ({', '.join(working)}) into {directory} ..."))
        code, last, record = run_smoke(working, directory)
        if record is None:
            show([Check(FAIL, f"dlbench run exited {code} without a record: {last}")])
            good = False
        else:
            good = show(invariant_checks(code, record)) and good
    out.print(plain("doctor: all checks passed" if good else "doctor: some checks FAILED", "bold"))
    raise SystemExit(0 if good else 1)
