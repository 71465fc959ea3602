"""The device timer of PyTorch cases on a CUDA GPU."""

from __future__ import annotations

from typing import Any

from dlbench.frameworks.base import DeviceTimer


class CudaEventTimer(DeviceTimer):
    """Two ``torch.cuda.Event(enable_timing=True)`` recorded on the current stream around the work;
    ``elapsed_time`` is the device time between them in milliseconds, after the end event completed."""

    def __init__(self, torch: Any) -> None:
        self._begin = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self._begin.record()

    def stop(self) -> None:
        self._end.record()

    def elapsed_ms(self) -> float:
        self._end.synchronize()
        return float(self._begin.elapsed_time(self._end))
