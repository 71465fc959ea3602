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
from dataclasses import dataclass
from typing import Any

from dlbench.frameworks.base import BuiltCase, DeviceTimer

SYNC_REPEATS = 50  # idle syncs timed together: a single one is close to the clock's resolution
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


@dataclass(frozen=True)
class AfterTiming:
    """What is read once the samples are taken (see :func:`after_timing`)."""

    measure_peak: int | None  # the framework's peak over the whole measurement, first call included
    steady_peak: int | None  # the peak of one iteration after a reset: the pass's own steady-state need
    sync_ms: float | None  # one sync on the idle device (None: not probed, see after_timing)
    device_samples_ms: tuple[float, ...]  # per-iteration device time of event-timed blocks (where events exist)


# A CPU case slower than this gets no sync probe: its extra iteration would cost seconds, and a sync of
# microseconds cannot reach 5% of it. GPU cases always get one (their steady-state peak needs the iteration).
SYNC_PROBE_MAX_MEDIAN_MS = 1000.0


def after_timing(built: BuiltCase, fn: Callable[[], Any], pass_: str, iterations: int, blocks: int,
                 steady: bool, probe: bool = True) -> AfterTiming:
    """Readings taken after the timed samples, never inside them.

    The framework's peak counter, reset before the first call, first gives the peak of the whole measurement:
    on a GPU that is mostly the scratch of cuDNN's algorithm search, TensorFlow's autotuning or XLA's
    compilation, which the first call does once. With ``steady`` the counter is then reset and one more
    synchronised iteration run: its peak is what the pass needs in steady state (live parameters and batch
    included, as the allocator counts them). That iteration's finished result then serves to time the idle
    sync, and, where the framework has device events, ``blocks`` blocks of ``iterations`` calls are timed on
    the device's clock."""
    measure_peak = built.peak_memory_bytes(pass_)
    if not (steady or probe):
        return AfterTiming(measure_peak, None, None, ())
    steady_peak = None
    if steady:
        built.reset_peak_memory()
    handle = fn()
    built.sync(handle)
    if steady:
        steady_peak = built.peak_memory_bytes(pass_)
    sync_ms = idle_sync_ms(built.sync, handle)
    del handle
    timer = built.device_timer()
    samples = device_samples_ms(fn, built.sync, timer, iterations, blocks) if timer is not None else ()
    return AfterTiming(measure_peak, steady_peak, sync_ms, samples)
