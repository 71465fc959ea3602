"""The environment record stored beside every result: host, GPUs, packages, git commit.

Captured in the parent without importing any framework (that would take seconds and hundreds of MB);
each worker adds what its framework reports about itself (versions, backends, threads in effect) under
``frameworks``.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import psutil

from dlbench import __version__
from dlbench.machine.nvml import nvml_gpus

PACKAGES = (
    "dlbench", "numpy", "scipy", "torch", "tensorflow", "tensorflow-cpu", "keras", "jax", "jaxlib",
    "jax-cuda12-plugin", "nvidia-cudnn-cu12", "pandas", "matplotlib",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


CPUINFO = Path("/proc/cpuinfo")

# The features the environment record keeps: those that decide which kernels BLAS/oneDNN pick. Only the
# record filters; feature checks (can this CPU run fp16 in oneDNN?) read the unfiltered set.
RECORDED_FLAGS = frozenset({
    "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx_ne_convert",
    "amx_bf16", "amx_fp16", "amx_tile", "neon", "asimd",
})


def cpu_features(cpuinfo: Path | None = None) -> frozenset[str]:
    """Every feature flag the kernel reports for the first CPU (x86 ``flags``, Arm ``Features``)."""
    try:
        for line in (cpuinfo or CPUINFO).read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_flags(cpuinfo: Path | None = None) -> list[str]:
    """The SIMD features recorded beside every result (avx2, avx512f, amx, ...), sorted."""
    return sorted(RECORDED_FLAGS & cpu_features(cpuinfo))


def git_info(directory: Path | None = None) -> dict[str, Any]:
    """The commit of the working directory, if it is a git checkout (``{}`` otherwise)."""
    try:
        cwd = directory or Path.cwd()  # the current directory may have been deleted
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": bool(dirty)}


def package_versions() -> dict[str, str]:
    found = {}
    for dist in PACKAGES:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def host_info() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    return {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "kernel": platform.version(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_logical": psutil.cpu_count(logical=True),
        "cpu_physical": psutil.cpu_count(logical=False),
        "affinity": sorted(os.sched_getaffinity(0)),
        "memory_gb": round(memory.total / 2**30, 2),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def capture(gpu_probes: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The environment record of a run (frameworks are added by the workers as they start). ``gpu_probes``:
    what the plan's GPU probe found per framework (:mod:`dlbench.plan.gpu_probe`: the cuDNN and CUDA runtime
    each framework really loaded), recorded when there is any."""
    record: dict[str, Any] = {
        "dlbench": __version__,
        "host": host_info(),
        "gpus": list(nvml_gpus()),
        "git": git_info(),
        "packages": package_versions(),
    }
    if gpu_probes:
        record["gpu_probes"] = gpu_probes
    return record
