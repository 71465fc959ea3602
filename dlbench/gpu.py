"""GPU discovery through NVML (``nvidia-ml-py``), without importing any framework.

``nvmlInit`` raises ``NVMLError_LibraryNotFound`` (or another NVMLError) where there is no driver: that
means "no GPU here", never a crash.
"""

from __future__ import annotations

from functools import cache
from typing import Any


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@cache
def nvml_gpus() -> tuple[dict[str, Any], ...]:
    """The GPUs NVML reports (name, driver, memory), or () where NVML or the driver is absent."""
    try:
        import pynvml
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound / DriverNotLoaded / ...: no usable GPU
        return ()
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append({
                "index": index,
                "name": _text(pynvml.nvmlDeviceGetName(handle)),
                "driver": driver,
                "memory_mb": round(memory.total / 2**20),
            })
        return tuple(gpus)
    except Exception:
        return ()
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
