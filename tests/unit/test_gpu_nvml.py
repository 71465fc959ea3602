"""NVML discovery against a fake pynvml: every field recorded, and partial failures kept per device and field."""

import sys

import pytest

from dlbench.machine import nvml as gpu
from tests.fake_nvml import FakeDevice, NVMLError_LibraryNotFound, fake_pynvml


@pytest.fixture(autouse=True)
def fresh_cache():
    gpu.nvml_gpus.cache_clear()
    yield
    gpu.nvml_gpus.cache_clear()


def install(monkeypatch: pytest.MonkeyPatch, devices: list[FakeDevice], **kwargs) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(devices, **kwargs))


def test_no_driver_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [FakeDevice()], init_error=NVMLError_LibraryNotFound())
    assert gpu.nvml_gpus() == ()
    assert gpu.gpu_processes() == {}


def test_every_field_of_a_healthy_device(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [FakeDevice()])
    (found,) = gpu.nvml_gpus()
    assert found == {
        "index": 0, "driver": "550.54.15", "cuda_driver": "12.4", "name": "NVIDIA A100-SXM4-40GB",
        "uuid": "GPU-aaaa", "pci_bus_id": "00000000:07:00.0", "memory_mb": 40960, "compute_capability": "8.0",
        "mig_mode": "disabled", "persistence_mode": "on", "power_limit_w": 400.0,
        "clocks": {"applications_graphics_mhz": 1410, "applications_memory_mhz": 1215, "max_sm_mhz": 1510,
                   "max_memory_mhz": 1315},
    }


def test_a_denied_field_leaves_the_others_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [FakeDevice(denied={"power_limit", "uuid", "app_clocks"})])
    (found,) = gpu.nvml_gpus()
    assert found["name"] == "NVIDIA A100-SXM4-40GB" and found["memory_mb"] == 40960
    assert "power_limit_w" not in found and "uuid" not in found
    assert found["errors"] == {"uuid": "NVMLError_NoPermission: Insufficient Permissions",
                               "power_limit_w": "NVMLError_NoPermission: Insufficient Permissions"}
    assert found["clocks"] == {"max_sm_mhz": 1510, "max_memory_mhz": 1315}


def test_a_device_that_cannot_be_opened_does_not_hide_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [FakeDevice(no_handle=True), FakeDevice(uuid="GPU-bbbb")])
    first, second = gpu.nvml_gpus()
    assert first["index"] == 0 and "handle" in first["errors"] and "name" not in first
    assert second["uuid"] == "GPU-bbbb" and "errors" not in second


def test_a_mig_slice_in_a_container(monkeypatch: pytest.MonkeyPatch) -> None:
    """A MIG-enabled A100 seen from a container: most device-wide queries are refused, the rest is kept."""
    slice_ = FakeDevice(mig=1, denied={"power_limit", "app_clocks", "max_clocks", "persistence", "pci"})
    install(monkeypatch, [slice_])
    (found,) = gpu.nvml_gpus()
    assert found["mig_mode"] == "enabled" and found["compute_capability"] == "8.0"
    assert set(found["errors"]) == {"power_limit_w", "persistence_mode", "pci_bus_id"}
    assert found["clocks"] == {}


def test_other_processes_on_the_gpu_are_found_but_not_ourselves(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = FakeDevice(uuid="GPU-busy", processes=[(4242, 3 * 2**30), (77, 2**20)])
    install(monkeypatch, [busy, FakeDevice(uuid="GPU-idle"), FakeDevice(uuid="GPU-denied", denied={"processes"})])
    found = gpu.gpu_processes(exclude_pid=77)
    assert found == {"GPU-busy": [{"pid": 4242, "used_mb": 3072}]}
    assert gpu.describe_processes(found) == "GPU-busy: pid 4242 (3072 MB)"


def test_cuda_version_decoding() -> None:
    assert gpu.cuda_version(12040) == "12.4"
    assert gpu.cuda_version(11080) == "11.8"
    assert gpu.cuda_version(13000) == "13.0"
