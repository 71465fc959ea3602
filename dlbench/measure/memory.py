"""Host memory of the current process: a resettable peak, via Linux's /proc interface.

``ru_maxrss`` only ever grows, so it cannot give a per-case peak inside a long-lived worker. Writing ``5``
to ``/proc/self/clear_refs`` resets the high-water mark ``VmHWM`` (Linux >= 4.0), which we then read back
after the case. Where /proc is missing we fall back to psutil's current RSS (a lower bound of the peak).
"""

from __future__ import annotations

from pathlib import Path

import psutil

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def current_rss() -> int:
    kib = _status_kib("VmRSS")
    return kib * 1024 if kib is not None else int(psutil.Process().memory_info().rss)


def reset_peak_rss() -> bool:
    """Reset the peak-RSS counter; False where the kernel does not allow it."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    kib = _status_kib("VmHWM")
    return kib * 1024 if kib is not None else current_rss()
