"""GPU paths that can be checked without a GPU: discovery through NVML, and the plan's decisions."""

import sys
import types

import pytest

from dlbench.errors import DlbenchError
from dlbench.machine import nvml as gpu
from dlbench.plan.planner import check_gpu, make_plan
from dlbench.plan.suite import Overrides, load_suite
from tests.conftest import smoke_cases

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
    monkeypatch.setattr("dlbench.plan.planner.nvml_gpus", lambda: ())
    with pytest.raises(DlbenchError, match=r"no usable GPU for fake \(no GPU found by NVML\)"):
        make_plan("smoke", Overrides(frameworks=("fake",), devices=("gpu",)))


def test_a_suites_gpu_section_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dlbench.plan.planner.nvml_gpus", lambda: ())
    plan = make_plan("smoke", Overrides(frameworks=("fake",)))
    assert {c.device for c in plan.cases} == {"cpu"}
    assert any("gpu cases skipped" in note for note in plan.suite.notes)


def test_a_gpu_seen_by_nvml_but_a_cpu_only_build_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlbench.frameworks.registry import get_adapter

    monkeypatch.setattr("dlbench.plan.planner.nvml_gpus", lambda: A_GPU)
    torch = get_adapter("torch")
    monkeypatch.setattr(type(torch), "supports_gpu_build", lambda self: False)
    suite = load_suite("smoke")
    with pytest.raises(DlbenchError, match="installed build has no GPU support"):
        check_gpu(suite, [torch], explicit=True)


def test_a_usable_gpu_keeps_gpu_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLBENCH_FAKE_GPU", "1")
    plan = make_plan("smoke", Overrides(frameworks=("fake",), devices=("gpu",)))
    assert {c.device for c in plan.cases} == {"gpu"}
    assert len(plan.cases) == smoke_cases()  # every network phase (8 built-in) x 2 passes


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


# ----- issue 14 items 9 and 10: partial availability and the plan-time probe -----

def gpu_capable(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """NVML sees a GPU; the named frameworks' builds support it, every other one is a CPU-only build."""
    from dlbench.frameworks.registry import get_adapter

    monkeypatch.setattr("dlbench.plan.planner.nvml_gpus", lambda: A_GPU)
    monkeypatch.setattr("dlbench.plan.planner.gpu_processes", lambda: {})
    for name in ("torch", "tensorflow", "jax"):
        monkeypatch.setattr(type(get_adapter(name)), "supports_gpu_build",
                            (lambda self: True) if name in names else (lambda self: False))


def probe_ok(adapter):
    from dlbench.plan.gpu_probe import ProbeResult

    return ProbeResult(adapter.name, True, info={"version": "1", "loaded": {"cudnn": {"version": "9.1.0"}}})


def failing_probe(*broken: str):
    from dlbench.plan.gpu_probe import ProbeResult

    def probe(adapter):
        if adapter.name in broken:
            return ProbeResult(adapter.name, False, error="RuntimeError: CUDA driver version is insufficient")
        return probe_ok(adapter)
    return probe


ALL3 = ("torch", "tensorflow", "jax")


def test_one_cpu_only_framework_drops_only_its_own_gpu_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_capable(monkeypatch, "torch", "jax")  # tensorflow-cpu, as the project's own extra installs
    plan = make_plan("smoke", Overrides(devices=("gpu",), workloads=("lenet",)), probe=probe_ok)
    assert {c.framework for c in plan.cases} == {"torch", "jax"}
    assert {c.device for c in plan.cases} == {"gpu"}
    (note,) = [n for n in plan.suite.notes if "left out" in n]
    assert "tensorflow" in note and "installed build has no GPU support" in note
    assert set(plan.gpu_probes) == {"torch", "jax"}


def test_a_suites_gpu_section_keeps_the_frameworks_that_can(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_capable(monkeypatch, "jax")
    plan = make_plan("lenet", Overrides(), probe=probe_ok)
    gpu_frameworks = {c.framework for c in plan.cases if c.device == "gpu"}
    cpu_frameworks = {c.framework for c in plan.cases if c.device == "cpu"}
    assert gpu_frameworks == {"jax"} and cpu_frameworks == set(ALL3)


def test_naming_a_cpu_only_framework_for_the_gpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_capable(monkeypatch, "torch", "jax")
    with pytest.raises(DlbenchError, match=r"^--device gpu: no usable GPU for tensorflow \(installed build"):
        make_plan("smoke", Overrides(frameworks=ALL3, devices=("gpu",)), probe=probe_ok)


def test_no_framework_able_to_use_the_gpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_capable(monkeypatch)
    with pytest.raises(DlbenchError, match="no usable GPU .torch: installed build has no GPU support; tensorflow"):
        make_plan("smoke", Overrides(devices=("gpu",)), probe=probe_ok)


def test_a_failed_probe_refuses_an_explicit_gpu_run_with_the_frameworks_error(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_capable(monkeypatch, "torch", "jax")
    with pytest.raises(DlbenchError, match="^--device gpu: jax fails on the GPU: RuntimeError: CUDA driver version"):
        make_plan("smoke", Overrides(devices=("gpu",)), probe=failing_probe("jax"))


def test_a_failed_probe_drops_a_suites_gpu_cases_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_capable(monkeypatch, "torch", "jax")
    plan = make_plan("lenet", Overrides(), probe=failing_probe("jax"))
    assert {c.framework for c in plan.cases if c.device == "gpu"} == {"torch"}
    assert any("jax: GPU probe failed: RuntimeError: CUDA driver" in n for n in plan.suite.notes)


def test_other_processes_on_the_gpu_are_a_warning_note(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_capable(monkeypatch, "jax")
    monkeypatch.setattr("dlbench.plan.planner.gpu_processes", lambda: {"GPU-aaaa": [{"pid": 4242, "used_mb": 900}]})
    plan = make_plan("smoke", Overrides(devices=("gpu",), frameworks=("jax",)), probe=probe_ok)
    assert any(n.startswith("warning: other processes") and "pid 4242 (900 MB)" in n for n in plan.suite.notes)


def test_the_probe_runs_the_framework_on_the_gpu_in_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlbench.frameworks.registry import get_adapter
    from dlbench.plan.gpu_probe import probe_gpu

    monkeypatch.setenv("DLBENCH_FAKE_GPU", "1")
    result = probe_gpu(get_adapter("fake"), timeout_s=60)
    assert result.ok, result.error
    assert result.info["devices"] == ["cpu", "gpu"] and "loaded" in result.info


def test_the_probe_reports_a_broken_framework_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlbench.frameworks.registry import get_adapter
    from dlbench.plan.gpu_probe import probe_gpu

    monkeypatch.setenv("DLBENCH_FAKE_GPU", "1")
    monkeypatch.setenv("DLBENCH_FAKE_FAULTS", "import:*")
    result = probe_gpu(get_adapter("fake"), timeout_s=60)
    assert not result.ok
    assert result.error.startswith("ImportError: fake adapter: simulated broken installation")
    assert "\n" not in result.error


def test_loaded_libraries_are_read_from_the_process_maps(tmp_path) -> None:
    from dlbench.plan.gpu_probe import loaded_cuda_libraries

    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f01 r-xp 00000000 08:01 1 /venv/nvidia/cudnn/lib/libcudnn.so.9\n"
        "7f02-7f03 r-xp 00000000 08:01 2 /venv/nvidia/cublas/lib/libcublasLt.so.12\n"
        "7f04-7f05 r-xp 00000000 08:01 3 /venv/nvidia/cublas/lib/libcublas.so.12\n"
        "7f06-7f07 rw-p 00000000 00:00 0\n")
    found = loaded_cuda_libraries(maps)
    assert found["cudnn"]["path"] == "/venv/nvidia/cudnn/lib/libcudnn.so.9"  # no such file: no version
    assert found["cublas"] == {"path": "/venv/nvidia/cublas/lib/libcublas.so.12"}
    assert "cudart" not in found
