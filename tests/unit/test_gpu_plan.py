"""GPU paths that can be checked without a GPU: discovery through NVML, and the plan's decisions."""

import sys
import types

import pytest

from dlbench import gpu
from dlbench.errors import DlbenchError
from dlbench.plan import check_gpu, make_plan
from dlbench.suite import Overrides, load_suite

A_GPU = ({"index": 0, "name": "NVIDIA Test", "driver": "999.1", "memory_mb": 16384},)


def fake_pynvml(init_error: Exception | None) -> types.ModuleType:
    module = types.ModuleType("pynvml")

    def init() -> None:
        if init_error is not None:
            raise init_error

    class Memory:
        total = 8 * 2**30

    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    module.nvmlSystemGetDriverVersion = lambda: b"550.54"  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: 2  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda h: f"GPU {h}"  # type: ignore[attr-defined]
    module.nvmlDeviceGetMemoryInfo = lambda h: Memory()  # type: ignore[attr-defined]
    return module


@pytest.fixture(autouse=True)
def fresh_cache():
    gpu.nvml_gpus.cache_clear()
    yield
    gpu.nvml_gpus.cache_clear()


def test_nvml_without_a_driver_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    class NVMLError_LibraryNotFound(Exception):  # noqa: N801 (pynvml's name)
        pass

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(NVMLError_LibraryNotFound("libnvidia-ml.so.1")))
    assert gpu.nvml_gpus() == ()


def test_nvml_lists_gpus_with_driver_and_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(None))
    gpus = gpu.nvml_gpus()
    assert [g["name"] for g in gpus] == ["GPU 0", "GPU 1"]
    assert gpus[0]["driver"] == "550.54" and gpus[0]["memory_mb"] == 8192


def test_explicit_gpu_without_a_gpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dlbench.plan.nvml_gpus", lambda: ())
    with pytest.raises(DlbenchError, match="no usable GPU for fake .no GPU found by NVML"):
        make_plan("smoke", Overrides(frameworks=("fake",), devices=("gpu",)))


def test_a_suites_gpu_section_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dlbench.plan.nvml_gpus", lambda: ())
    plan = make_plan("smoke", Overrides(frameworks=("fake",)))
    assert {c.device for c in plan.cases} == {"cpu"}
    assert any("gpu cases skipped" in note for note in plan.suite.notes)


def test_a_gpu_seen_by_nvml_but_a_cpu_only_build_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlbench.frameworks.registry import get_adapter

    monkeypatch.setattr("dlbench.plan.nvml_gpus", lambda: A_GPU)
    torch = get_adapter("torch")
    monkeypatch.setattr(type(torch), "supports_gpu_build", lambda self: False)
    suite = load_suite("smoke")
    with pytest.raises(DlbenchError, match="installed build has no GPU support"):
        check_gpu(suite, [torch], explicit=True)


def test_a_usable_gpu_keeps_gpu_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLBENCH_FAKE_GPU", "1")
    plan = make_plan("smoke", Overrides(frameworks=("fake",), devices=("gpu",)))
    assert {c.device for c in plan.cases} == {"gpu"}
    assert len(plan.cases) == 16  # 8 workload phases x 2 passes


@pytest.mark.parametrize(("version", "expected"), [("2.13.0+cpu", False), ("2.4.1+cu121", True), ("2.4.1", True)])
def test_torch_build_detection_reads_the_version_label(monkeypatch: pytest.MonkeyPatch, version: str,
                                                       expected: bool) -> None:
    from dlbench.frameworks.registry import get_adapter

    torch = get_adapter("torch")
    monkeypatch.setattr(type(torch), "version", lambda self: version)
    assert torch.supports_gpu_build() is expected


def test_gpu_workers_get_the_documented_environment() -> None:
    from dlbench.frameworks.registry import get_adapter

    jax_env = get_adapter("jax").worker_env("gpu", 4)
    assert jax_env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert jax_env.get("JAX_PLATFORMS") == "cuda"
    tf_env = get_adapter("tensorflow").worker_env("gpu", 4)
    assert tf_env.get("TF_FORCE_GPU_ALLOW_GROWTH") == "true"
