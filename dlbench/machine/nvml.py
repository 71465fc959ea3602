"""GPU discovery through NVML (``nvidia-ml-py``), without importing any framework.

``nvmlInit`` raises ``NVMLError_LibraryNotFound`` (or another NVMLError) where there is no driver: that
means "no GPU here", never a crash.

Every query after that is caught on its own, per device and per field: a device that denies one query (no
permission in a container, a MIG slice that has no application clocks, an old board without a power
reading) still appears, with what it did answer and, under ``errors``, why each other field is missing. One
refused query must never make dlbench report that there is no GPU at all.

What is recorded per device is what explains a GPU timing: identity (UUID, PCI bus id, compute capability),
software (driver and the CUDA version the driver supports), and the settings that change speed (MIG mode,
persistence mode, power limit, application clocks). NVML has no getter for clocks locked with
``nvidia-smi -lgc``; a lock shows up while timing as the "applications clocks setting" throttle reason, which
:mod:`dlbench.machine.telemetry` records per case.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from types import ModuleType
from typing import Any


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nvml_error(exc: BaseException) -> str:
    """A short reason for a failed NVML query (``NVMLError_NoPermission: Insufficient Permissions``)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def nvml() -> Iterator[ModuleType | None]:
    """``pynvml``, initialised, or None where the package, the library or the driver is missing."""
    try:
        import pynvml
    except ImportError:
        yield None
        return
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound / DriverNotLoaded / ...: no usable GPU
        yield None
        return
    try:
        yield pynvml
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def cuda_version(encoded: int) -> str:
    """NVML's CUDA version integer (``12040``) as ``12.4``."""
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


class _Fields:
    """Collects one device's fields; a query that raises leaves its field out and its reason in ``errors``."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record
        self.errors: dict[str, str] = {}

    def add(self, name: str, query: Callable[[], Any]) -> None:
        try:
            self.record[name] = query()
        except Exception as exc:  # NVMLError_NoPermission / NotSupported / GpuIsLost / a missing symbol
            self.errors[name] = nvml_error(exc)


def _clocks(nv: ModuleType, handle: Any) -> dict[str, int]:
    """Application clock targets and maxima (MHz) that NVML answers; clock kinds it refuses are left out."""
    queries = {
        "applications_graphics_mhz": lambda: nv.nvmlDeviceGetApplicationsClock(handle, nv.NVML_CLOCK_GRAPHICS),
        "applications_memory_mhz": lambda: nv.nvmlDeviceGetApplicationsClock(handle, nv.NVML_CLOCK_MEM),
        "max_sm_mhz": lambda: nv.nvmlDeviceGetMaxClockInfo(handle, nv.NVML_CLOCK_SM),
        "max_memory_mhz": lambda: nv.nvmlDeviceGetMaxClockInfo(handle, nv.NVML_CLOCK_MEM),
    }
    clocks = {}
    for name, query in queries.items():
        try:
            clocks[name] = int(query())
        except Exception:
            continue
    return clocks


def _device(nv: ModuleType, index: int, system: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {"index": index, **system}
    try:
        handle = nv.nvmlDeviceGetHandleByIndex(index)
    except Exception as exc:  # the device exists (it is counted) but cannot be opened
        record["errors"] = {"handle": nvml_error(exc)}
        return record
    fields = _Fields(record)
    fields.add("name", lambda: _text(nv.nvmlDeviceGetName(handle)))
    fields.add("uuid", lambda: _text(nv.nvmlDeviceGetUUID(handle)))
    fields.add("pci_bus_id", lambda: _text(nv.nvmlDeviceGetPciInfo(handle).busId))
    fields.add("memory_mb", lambda: round(nv.nvmlDeviceGetMemoryInfo(handle).total / 2**20))
    fields.add("compute_capability", lambda: "{}.{}".format(*nv.nvmlDeviceGetCudaComputeCapability(handle)))
    fields.add("mig_mode", lambda: "enabled" if nv.nvmlDeviceGetMigMode(handle)[0] else "disabled")
    fields.add("persistence_mode", lambda: "on" if nv.nvmlDeviceGetPersistenceMode(handle) else "off")
    fields.add("power_limit_w", lambda: round(nv.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000, 1))
    record["clocks"] = _clocks(nv, handle)
    if fields.errors:
        record["errors"] = fields.errors
    return record


def _system(nv: ModuleType) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        found["driver"] = _text(nv.nvmlSystemGetDriverVersion())
    except Exception:
        pass
    try:
        found["cuda_driver"] = cuda_version(int(nv.nvmlSystemGetCudaDriverVersion()))
    except Exception:
        pass
    return found


@cache
def nvml_gpus() -> tuple[dict[str, Any], ...]:
    """The GPUs NVML reports, each with what it answered (see the module docstring), or () where NVML or the
    driver is absent or cannot even count the devices."""
    with nvml() as nv:
        if nv is None:
            return ()
        try:
            count = int(nv.nvmlDeviceGetCount())
        except Exception:
            return ()
        system = _system(nv)
        return tuple(_device(nv, index, system) for index in range(count))


def gpu_processes(exclude_pid: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Compute processes on each GPU now, other than ``exclude_pid`` (this process by default): another job
    on the GPU shares its SMs and memory bandwidth, so a run started beside it measures both. Keyed by UUID
    (or index where the UUID is refused); GPUs that refuse the query or run nothing else are left out."""
    own = os.getpid() if exclude_pid is None else exclude_pid
    found: dict[str, list[dict[str, Any]]] = {}
    with nvml() as nv:
        if nv is None:
            return found
        try:
            count = int(nv.nvmlDeviceGetCount())
        except Exception:
            return found
        for index in range(count):
            try:
                handle = nv.nvmlDeviceGetHandleByIndex(index)
                processes = nv.nvmlDeviceGetComputeRunningProcesses(handle)
            except Exception:
                continue
            others = [{"pid": int(p.pid), "used_mb": _used_mb(p)} for p in processes if int(p.pid) != own]
            if not others:
                continue
            try:
                key = _text(nv.nvmlDeviceGetUUID(handle))
            except Exception:
                key = str(index)
            found[key] = others
    return found


def _used_mb(process: Any) -> int | None:
    used = getattr(process, "usedGpuMemory", None)  # None where the driver does not say (e.g. Windows WDDM)
    return round(used / 2**20) if isinstance(used, int) else None


def describe_processes(processes: dict[str, list[dict[str, Any]]]) -> str:
    """``GPU-1234...: pid 77 (2048 MB), pid 80`` for a warning line."""
    parts = []
    for gpu, found in processes.items():
        pids = ", ".join(f"pid {p['pid']}" + (f" ({p['used_mb']} MB)" if p.get("used_mb") is not None else "")
                         for p in found)
        parts.append(f"{gpu}: {pids}")
    return "; ".join(parts)
