"""GPU telemetry during timing, against a fake pynvml: clocks, temperature, power, throttle flags."""

import sys
import time

import pytest

from dlbench.machine import telemetry as gpu_telemetry
from tests.fake_nvml import FakeDevice, NVMLError_LibraryNotFound, fake_pynvml


def install(monkeypatch: pytest.MonkeyPatch, devices: list[FakeDevice], **kwargs) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(devices, **kwargs))


def test_no_nvml_means_no_telemetry_and_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [FakeDevice()], init_error=NVMLError_LibraryNotFound())
    sampler = gpu_telemetry.start("0")
    assert sampler is None and gpu_telemetry.stop(sampler) is None


def test_a_cool_gpu_at_full_clock_is_not_throttled(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [FakeDevice()])
    summary = gpu_telemetry.stop(gpu_telemetry.start("0", interval_s=0.01))
    assert summary is not None and summary["n_samples"] >= 2
    assert summary["sm_mhz"] == {"min": 1410, "median": 1410, "max": 1410}
    assert summary["temperature_c_max"] == 45 and summary["power_w_max"] == 250.0
    assert summary["throttle_reasons"] == {} and summary["throttled"] is False


def test_a_power_capped_gpu_flags_the_case(monkeypatch: pytest.MonkeyPatch) -> None:
    device = FakeDevice()
    install(monkeypatch, [device])
    sampler = gpu_telemetry.start("0", interval_s=0.005)
    time.sleep(0.05)
    device.throttle, device.clocks[1], device.temperature = 0x4 | 0x20, 1100, 87  # power cap + thermal
    time.sleep(0.05)
    summary = gpu_telemetry.stop(sampler)
    assert summary is not None and summary["throttled"] is True and gpu_telemetry.throttled(summary)
    assert set(summary["throttle_reasons"]) == {"sw_power_cap", "sw_thermal_slowdown"}
    assert 0 < summary["throttle_reasons"]["sw_power_cap"] < 1  # a share of the samples
    assert summary["sm_mhz"]["min"] == 1100 and summary["sm_mhz"]["max"] == 1410
    assert summary["temperature_c_max"] == 87


def test_application_clocks_alone_are_recorded_but_not_a_slowdown() -> None:
    summary = gpu_telemetry.summarize([{"sm_mhz": 1200, "reasons": 0x2}, {"sm_mhz": 1200, "reasons": 0x2}])
    assert summary == {"n_samples": 2, "sm_mhz": {"min": 1200, "median": 1200, "max": 1200},
                       "throttle_reasons": {"applications_clocks": 1.0}, "throttled": False}


def test_the_workers_gpu_is_found_by_uuid_and_denied_fields_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [FakeDevice(uuid="GPU-aaaa"), FakeDevice(uuid="GPU-bbbb", temperature=70,
                                                                  denied={"power", "throttle"})])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb")
    summary = gpu_telemetry.stop(gpu_telemetry.start(interval_s=0.01))
    assert summary is not None and summary["temperature_c_max"] == 70
    assert "power_w_max" not in summary and "throttled" not in summary


def test_an_unknown_gpu_means_no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [FakeDevice()])
    assert gpu_telemetry.start("GPU-nope") is None


@pytest.mark.parametrize(("value", "expected"), [(None, "0"), ("", ""), ("1", "1"), ("GPU-x, GPU-y", "GPU-x")])
def test_worker_gpu_reads_cuda_visible_devices(value: str | None, expected: str) -> None:
    environ = {} if value is None else {"CUDA_VISIBLE_DEVICES": value}
    assert gpu_telemetry.worker_gpu(environ) == expected
