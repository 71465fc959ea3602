"""Readings taken after the samples (dlbench.measure.device) on the simulated GPU: the steady-state peak
without the first call's scratch, the idle sync's cost, device-event times, and the allocator's in-use bytes
before a build, which show a leak."""

from __future__ import annotations

import pytest

from dlbench.frameworks.base import BuildRequest, BuiltCase
from dlbench.frameworks.fake import AUTOTUNE_SCRATCH, DEVICE_BUSY, FakeAdapter, SimulatedDevice
from dlbench.measure.device import after_timing, device_samples_ms, idle_sync_ms
from dlbench.workloads import get_workload, initial_weights, make_batch


def built_case(adapter: FakeAdapter, device: str = "gpu", batch: int = 8, key: str = "lenet/x") -> BuiltCase:
    request = BuildRequest(get_workload("lenet"), "", make_batch("lenet", batch), initial_weights("lenet"),
                           "default", device, case_key=key)
    return adapter.build(request)


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> FakeAdapter:
    monkeypatch.setenv("DLBENCH_FAKE_GPU", "1")
    monkeypatch.delenv("DLBENCH_FAKE_FAULTS", raising=False)
    adapter = FakeAdapter()
    adapter.initialize("gpu", 1)
    return adapter


def test_the_steady_peak_leaves_out_the_first_calls_scratch(gpu: FakeAdapter) -> None:
    built = built_case(gpu)
    batch_bytes = make_batch("lenet", 8).x.nbytes
    built.reset_peak_memory()
    fn = built.prepare("forward")
    for _ in range(5):  # the first call (with its simulated autotuning) and the samples
        built.sync(fn())
    after = after_timing(built, fn, "forward", iterations=2, blocks=3, steady=True)
    assert after.measure_peak == batch_bytes * (4 + AUTOTUNE_SCRATCH)  # what device_peak used to be
    assert after.steady_peak == batch_bytes * 4  # one iteration after a reset: the pass's own need
    built.close()


def test_without_steady_the_counter_is_read_once_and_not_reset(gpu: FakeAdapter) -> None:
    built = built_case(gpu, device="cpu")
    fn = built.prepare("forward")
    built.sync(fn())
    after = after_timing(built, fn, "forward", iterations=2, blocks=3, steady=False)
    assert after.steady_peak is None and after.device_samples_ms == ()  # a CPU case has no device events
    built.close()


def test_device_events_time_each_block_beside_the_wall_clock(gpu: FakeAdapter) -> None:
    built = built_case(gpu)
    fn = built.prepare("gradient")
    timer = built.device_timer()
    assert timer is not None
    samples = device_samples_ms(fn, built.sync, timer, iterations=3, blocks=4)
    assert len(samples) == 4 and all(s > 0 for s in samples)
    after = after_timing(built, fn, "gradient", iterations=3, blocks=2, steady=True)
    assert len(after.device_samples_ms) == 2
    built.close()
    assert 0 < DEVICE_BUSY < 1


def test_the_idle_sync_cost_is_the_syncs_own(monkeypatch: pytest.MonkeyPatch, gpu: FakeAdapter) -> None:
    monkeypatch.setenv("DLBENCH_FAKE_SYNC_US", "300")
    slow = built_case(gpu)
    handle = slow.prepare("forward")()
    assert 0.29 <= idle_sync_ms(slow.sync, handle, repeats=20) < 5  # a busy machine can only add
    slow.close()
    monkeypatch.setenv("DLBENCH_FAKE_SYNC_US", "0")
    quick = built_case(gpu)
    assert idle_sync_ms(quick.sync, quick.prepare("forward")(), repeats=20) < 0.29
    quick.close()


def test_a_leak_shows_in_the_next_cases_in_use_bytes(monkeypatch: pytest.MonkeyPatch, gpu: FakeAdapter) -> None:
    start = gpu.device_memory_in_use("gpu")
    assert start is not None and gpu.device_memory_in_use("cpu") is None
    clean = built_case(gpu)
    assert gpu.device_memory_in_use("gpu") == start + make_batch("lenet", 8).x.nbytes
    clean.close()
    assert gpu.device_memory_in_use("gpu") == start
    monkeypatch.setenv("DLBENCH_FAKE_FAULTS", "leak:lenet/*")
    leaky = built_case(gpu, key="lenet/leak")
    leaky.close()
    assert gpu.device_memory_in_use("gpu") == start + make_batch("lenet", 8).x.nbytes
    SimulatedDevice.in_use = start


def test_a_slow_cpu_case_skips_the_extra_iteration(gpu: FakeAdapter) -> None:
    built = built_case(gpu, device="cpu")
    calls = []
    fn = built.prepare("forward")

    def counted() -> object:
        calls.append(1)
        return fn()

    after = after_timing(built, counted, "forward", iterations=1, blocks=1, steady=False, probe=False)
    assert calls == [] and after.sync_ms is None  # a CPU case slower than a second: no extra iteration
    after = after_timing(built, counted, "forward", iterations=1, blocks=1, steady=False, probe=True)
    assert calls == [1] and after.sync_ms is not None
    built.close()
