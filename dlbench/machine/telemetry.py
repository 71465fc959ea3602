"""What the GPU did while a case was timed: clocks, temperature, power and throttle reasons, sampled by NVML.

A GPU that reaches its power or thermal limit lowers its clocks, and the same code then runs slower for a
reason that has nothing to do with the framework. So a GPU worker samples its GPU in a small background
thread while a case is timed (:func:`start` before timing, :func:`stop` after it) and the case records the
summary: SM and memory clocks (min/median/max), the highest temperature, median and highest power draw, and
every throttle reason seen. A reason that means a slowdown (power cap, thermal, hardware slowdown, power
brake, board limit) flags the case as ``throttled``. Clocks held by application-clock settings or by
``nvidia-smi -lgc`` show as ``applications_clocks`` (not a slowdown by itself, but a fixed clock to know of).

The sampled GPU is the worker's: the first entry of ``CUDA_VISIBLE_DEVICES`` (a UUID, which NVML resolves, or
an index in PCI bus order, which is NVML's order). NVML calls are short ioctls that release the GIL; the
thread wakes every :data:`INTERVAL_S` and is one more (mostly sleeping) thread on the worker's cores.

Every NVML failure makes telemetry absent, never the case: a denied query leaves its field out.
Not run on real GPU hardware yet: written against the NVML documentation, tested with a fake ``pynvml``.
"""

from __future__ import annotations

import os
import statistics
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

INTERVAL_S = 0.1

# nvmlClocksEventReason* bits (nvml.h); names as recorded.
REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
    0x200: "board_limit",
    0x400: "reliability",
}
# The reasons that mean the GPU ran slower than it could: a case sampled with one of them is flagged.
SLOWDOWNS = frozenset({"sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown",
                       "hw_power_brake_slowdown", "board_limit", "reliability"})


def reason_names(mask: int) -> list[str]:
    """The names of the bits set in an NVML clocks-event (throttle) reason mask."""
    return [name for bit, name in REASONS.items() if mask & bit]


def worker_gpu(environ: dict[str, str] | None = None) -> str:
    """The GPU this process may use, as ``CUDA_VISIBLE_DEVICES`` names it (first entry; "0" if unset)."""
    value = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return "0"
    return value.split(",")[0].strip()


@dataclass
class Sampler:
    """A running sampler; get one from :func:`start`, hand it to :func:`stop`."""

    nv: ModuleType
    handle: Any
    interval_s: float
    samples: list[dict[str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        nv, handle = self.nv, self.handle
        reading: dict[str, int] = {}
        queries: dict[str, Callable[[], Any]] = {
            "sm_mhz": lambda: nv.nvmlDeviceGetClockInfo(handle, nv.NVML_CLOCK_SM),
            "memory_mhz": lambda: nv.nvmlDeviceGetClockInfo(handle, nv.NVML_CLOCK_MEM),
            "temperature_c": lambda: nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU),
            "power_mw": lambda: nv.nvmlDeviceGetPowerUsage(handle),
            "reasons": lambda: _event_reasons(nv, handle),
        }
        for name, query in queries.items():
            try:
                reading[name] = int(query())
            except Exception:  # a denied or unsupported query: that field is missing from this sample
                continue
        if reading:
            self.samples.append(reading)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()


def _event_reasons(nv: ModuleType, handle: Any) -> int:
    """``nvmlDeviceGetCurrentClocksEventReasons`` (drivers 535+), else the older throttle-reasons call."""
    getter = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if getter is None:
        getter = nv.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(getter(handle))


def start(gpu: str | None = None, interval_s: float = INTERVAL_S) -> Sampler | None:
    """Start sampling ``gpu`` (default :func:`worker_gpu`); None where NVML or that GPU is not available.
    Takes one sample at once, so that even a case shorter than the interval has a reading."""
    try:
        import pynvml as nv
    except ImportError:
        return None
    try:
        nv.nvmlInit()
    except Exception:
        return None
    selector = worker_gpu() if gpu is None else gpu
    try:
        if selector.isdigit():
            handle = nv.nvmlDeviceGetHandleByIndex(int(selector))
        else:
            handle = nv.nvmlDeviceGetHandleByUUID(selector)
    except Exception:
        _shutdown(nv)
        return None
    sampler = Sampler(nv, handle, interval_s)
    sampler.sample()
    sampler._thread = threading.Thread(target=sampler._loop, name="dlbench-gpu-telemetry", daemon=True)
    sampler._thread.start()
    return sampler


def stop(sampler: Sampler | None) -> dict[str, Any] | None:
    """Stop ``sampler`` (a last sample first) and summarise; None for None or when nothing was read."""
    if sampler is None:
        return None
    sampler._stop.set()
    if sampler._thread is not None:
        sampler._thread.join()
    sampler.sample()
    _shutdown(sampler.nv)
    return summarize(sampler.samples)


def _shutdown(nv: ModuleType) -> None:
    try:
        nv.nvmlShutdown()
    except Exception:
        pass


def summarize(samples: list[dict[str, int]]) -> dict[str, Any] | None:
    """The case's telemetry record from raw NVML samples (see the module docstring)."""
    if not samples:
        return None
    summary: dict[str, Any] = {"n_samples": len(samples)}

    def values(name: str) -> list[int]:
        return [s[name] for s in samples if name in s]

    for name in ("sm_mhz", "memory_mhz"):
        found = values(name)
        if found:
            summary[name] = {"min": min(found), "median": statistics.median(found), "max": max(found)}
    temperatures = values("temperature_c")
    if temperatures:
        summary["temperature_c_max"] = max(temperatures)
    power = values("power_mw")
    if power:
        summary["power_w_median"] = round(statistics.median(power) / 1000, 1)
        summary["power_w_max"] = round(max(power) / 1000, 1)
    masks = values("reasons")
    if masks:
        seen: dict[str, int] = {}
        for mask in masks:
            for name in reason_names(mask):
                seen[name] = seen.get(name, 0) + 1
        summary["throttle_reasons"] = {name: round(count / len(masks), 3) for name, count in seen.items()}
        summary["throttled"] = any(name in SLOWDOWNS for name in seen)
    return summary


def throttled(telemetry: dict[str, Any] | None) -> bool:
    """Whether a case's telemetry shows a slowdown reason (power or thermal limit, hardware slowdown)."""
    return bool(telemetry and telemetry.get("throttled"))


@dataclass
class Telemetry:
    """What :func:`sampling` hands out: ``summary`` is set when the ``with`` block ends."""

    summary: dict[str, Any] | None = None


@contextmanager
def sampling(active: bool, gpu: str | None = None) -> Iterator[Telemetry]:
    """``with sampling(case.device == "gpu") as telemetry: <timing>``, then ``telemetry.summary``: the one
    hook a worker needs. The sampler stops however the block ends (a failed case leaves no thread behind)."""
    holder = Telemetry()
    sampler = start(gpu) if active else None
    try:
        yield holder
    finally:
        holder.summary = stop(sampler)
