"""What timing on a device adds to the wall-clock samples: the cost of one synchronisation, device-clock
times, and the steady-state peak of the device allocator.

Every timed iteration ends with a sync (``torch.cuda.synchronize()``, TensorFlow's ``sync_devices()``, JAX's
``block_until_ready``), so each sample holds one sync's fixed cost. Frameworks differ in it: TensorFlow's
``sync_devices()`` dispatches a sync op to every logical device, PyTorch waits on one device. For a small
case that fixed cost can bias a comparison, so it is measured on the idle device after timing and a case
where it exceeds :data:`SYNC_SHARE_LIMIT` of the median is flagged.

Where the framework has device events (PyTorch's CUDA events), a few blocks are timed again with them: the
device's own time per iteration, beside the wall time. The difference is host work the device waited for
(Python, dispatch, the sync itself).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dlbench.frameworks.base import DeviceTimer

SYNC_REPEATS = 50  # idle syncs timed together: a single one is close to the clock's resolution
SYNC_SHARE_LIMIT = 0.05  # a sync costing more than this share of the median is flagged
DEVICE_BLOCKS = 5  # blocks timed with device events, at most one per wall-clock sample


def idle_sync_ms(sync: Callable[[Any], None], handle: Any, repeats: int = SYNC_REPEATS,
                 clock: Callable[[], int] = time.perf_counter_ns) -> float:
    """Milliseconds of one ``sync`` when there is nothing left to wait for: the handle's work is finished
    (the first call waits for it), so what is timed is the synchronisation's own fixed cost."""
    sync(handle)
    start = clock()
    for _ in range(repeats):
        sync(handle)
    return (clock() - start) / 1e6 / repeats


def sync_heavy(sync_ms: float | None, median_ms: float | None, limit: float = SYNC_SHARE_LIMIT) -> bool:
    """Whether one sync costs more than ``limit`` of the median iteration: such a case's time is partly the
    framework's synchronisation, and its comparison with another framework is biased by it."""
    if sync_ms is None or not median_ms:
        return False
    return sync_ms > limit * median_ms


def device_samples_ms(fn: Callable[[], Any], sync: Callable[[Any], None], timer: DeviceTimer,
                      iterations: int, blocks: int = DEVICE_BLOCKS) -> tuple[float, ...]:
    """Per-iteration device time of ``blocks`` blocks of ``iterations`` calls, each call between two device
    events and followed by its sync, exactly as in the wall-clock samples."""
    samples = []
    for _ in range(blocks):
        total = 0.0
        for _ in range(iterations):
            timer.start()
            handle = fn()
            timer.stop()
            sync(handle)
            total += timer.elapsed_ms()
        samples.append(total / iterations)
    return tuple(samples)
