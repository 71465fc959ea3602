"""A fake ``pynvml`` module for tests: devices described by dicts, any query made to fail per device.

Only the functions dlbench calls exist; a query a device "denies" raises the fake's ``NVMLError_NoPermission``,
as the real library does in a container without access or on a MIG slice.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any


class NVMLError(Exception):  # noqa: N818 (pynvml's name)
    pass


class NVMLError_NoPermission(NVMLError):  # noqa: N801
    def __str__(self) -> str:
        return "Insufficient Permissions"


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
    pass


@dataclass
class FakeDevice:
    name: str = "NVIDIA A100-SXM4-40GB"
    uuid: str = "GPU-aaaa"
    bus_id: str = "00000000:07:00.0"
    memory_total: int = 40 * 2**30
    capability: tuple[int, int] = (8, 0)
    mig: int = 0
    persistence: int = 1
    power_limit_mw: int = 400_000
    clocks: dict[int, int] = field(default_factory=lambda: {0: 1410, 1: 1410, 2: 1215})
    temperature: int = 45
    power_mw: int = 250_000
    throttle: int = 0
    processes: list[tuple[int, int]] = field(default_factory=list)  # (pid, bytes)
    denied: set[str] = field(default_factory=set)  # names of queries that raise NoPermission
    no_handle: bool = False


def fake_pynvml(devices: list[FakeDevice], init_error: Exception | None = None, driver: str = "550.54.15",
                cuda: int = 12040) -> types.ModuleType:
    nv = types.ModuleType("pynvml")
    by_handle: dict[int, FakeDevice] = dict(enumerate(devices))

    def query(name: str, result: Any) -> Any:
        def call(handle: int, *args: Any) -> Any:
            device = by_handle[handle]
            if name in device.denied:
                raise NVMLError_NoPermission()
            return result(device, *args)
        return call

    def init() -> None:
        if init_error is not None:
            raise init_error

    def handle(index: int) -> int:
        if devices[index].no_handle:
            raise NVMLError_NoPermission()
        return index

    class Memory:
        def __init__(self, total: int) -> None:
            self.total = total

    class Pci:
        def __init__(self, bus: str) -> None:
            self.busId = bus.encode()

    class Process:
        def __init__(self, pid: int, used: int) -> None:
            self.pid = pid
            self.usedGpuMemory = used

    attrs: dict[str, Any] = {
        "NVMLError": NVMLError,
        "NVML_CLOCK_GRAPHICS": 0, "NVML_CLOCK_SM": 1, "NVML_CLOCK_MEM": 2, "NVML_TEMPERATURE_GPU": 0,
        "nvmlInit": init, "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: driver.encode(),
        "nvmlSystemGetCudaDriverVersion": lambda: cuda,
        "nvmlDeviceGetCount": lambda: len(devices),
        "nvmlDeviceGetHandleByIndex": handle,
        "nvmlDeviceGetHandleByUUID": lambda uuid: next(i for i, d in by_handle.items() if d.uuid == uuid),
        "nvmlDeviceGetName": query("name", lambda d: d.name),
        "nvmlDeviceGetUUID": query("uuid", lambda d: d.uuid),
        "nvmlDeviceGetPciInfo": query("pci", lambda d: Pci(d.bus_id)),
        "nvmlDeviceGetMemoryInfo": query("memory", lambda d: Memory(d.memory_total)),
        "nvmlDeviceGetCudaComputeCapability": query("capability", lambda d: d.capability),
        "nvmlDeviceGetMigMode": query("mig", lambda d: [d.mig, d.mig]),
        "nvmlDeviceGetPersistenceMode": query("persistence", lambda d: d.persistence),
        "nvmlDeviceGetEnforcedPowerLimit": query("power_limit", lambda d: d.power_limit_mw),
        "nvmlDeviceGetApplicationsClock": query("app_clocks", lambda d, kind: d.clocks[kind]),
        "nvmlDeviceGetMaxClockInfo": query("max_clocks", lambda d, kind: d.clocks[kind] + 100),
        "nvmlDeviceGetClockInfo": query("clock", lambda d, kind: d.clocks[kind]),
        "nvmlDeviceGetTemperature": query("temperature", lambda d, sensor: d.temperature),
        "nvmlDeviceGetPowerUsage": query("power", lambda d: d.power_mw),
        "nvmlDeviceGetCurrentClocksEventReasons": query("throttle", lambda d: d.throttle),
        "nvmlDeviceGetComputeRunningProcesses": query("processes",
                                                       lambda d: [Process(p, b) for p, b in d.processes]),
    }
    for name, value in attrs.items():
        setattr(nv, name, value)
    return nv
