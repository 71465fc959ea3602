"""GPU workers on the simulated GPU (``DLBENCH_FAKE_GPU=1``) and pure fakes: the environment a GPU and a CPU
worker get, the out-of-memory markers of cuBLAS/cuDNN, worker replacement after a failed GPU case, the GPU
warm-up case and start-up allowance, and the adapter-side GPU settings (TF int64 feeds, JAX memory fraction)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dlbench.cases.spec import Case, WorkerKey
from dlbench.frameworks.jax.adapter import GPU_MEMORY_FRACTION, JaxAdapter
from dlbench.frameworks.tensorflow.runtime import device_feed_arrays
from dlbench.measure.timing import MeasureConfig
from dlbench.process.placement import Placement, default_gpu, gpu_environment, place
from dlbench.record.results import CaseResult
from dlbench.runner import protocol
from dlbench.runner.executor import MIN_GPU_STARTUP_S, MIN_STARTUP_S, LocalExecutor, startup_timeout
from dlbench.runner.worker import ends_worker, is_oom_message, warmup_case

TINY = MeasureConfig(warmup_s=0.0, min_block_s=0.0, min_samples=3, max_samples=3, min_time_s=0.0, max_time_s=0.0,
                     timeout_s=60)
UUID = "GPU-5f3c2a9e-0000-4000-8000-000000000001"


def case(workload: str = "lenet", pass_: str = "forward", device: str = "gpu", batch: int = 2) -> Case:
    return Case(workload, "", pass_, "fake", "default", device, 1, batch)


# ----- the environment of a GPU worker and of a CPU worker
def test_a_gpu_worker_sees_exactly_its_gpu_in_pci_bus_order() -> None:
    env = Placement(1, (0,), "gpu", UUID).environment()
    assert env["CUDA_VISIBLE_DEVICES"] == UUID and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env["OMP_NUM_THREADS"] == "1"
    assert int(env["CUDA_CACHE_MAXSIZE"]) >= 2**30  # PTX-compiled kernels stay cached between workers


def test_a_cpu_worker_sees_no_gpu_at_all() -> None:
    assert place(1, [0]).environment()["CUDA_VISIBLE_DEVICES"] == ""
    assert Placement(1, (0,), "cpu", UUID).environment()["CUDA_VISIBLE_DEVICES"] == ""


def test_without_a_named_gpu_the_first_gpu_given_to_dlbench_is_used() -> None:
    assert default_gpu({}) == "0"
    assert default_gpu({"CUDA_VISIBLE_DEVICES": " 3, 5"}) == "3"  # a scheduler gave us GPUs 3 and 5
    env = gpu_environment("gpu", "", {"CUDA_VISIBLE_DEVICES": "3,5", "CUDA_DEVICE_ORDER": "FASTEST_FIRST",
                                      "CUDA_CACHE_MAXSIZE": "1000"})
    assert env == {"CUDA_VISIBLE_DEVICES": "3", "CUDA_DEVICE_ORDER": "FASTEST_FIRST", "CUDA_CACHE_MAXSIZE": "1000"}
    assert gpu_environment("gpu", "1", {"CUDA_DEVICE_ORDER": "FASTEST_FIRST"})["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_the_job_carries_its_gpu_to_the_placement_and_over_the_wire() -> None:
    job = protocol.WorkerJob(WorkerKey("fake", "gpu", 1), (0,), (case(),), TINY, gpu=UUID)
    assert protocol.WorkerJob.from_wire(job.to_wire()) == job
    assert job.placement.environment()["CUDA_VISIBLE_DEVICES"] == UUID
    cpu = protocol.WorkerJob(WorkerKey("fake", "cpu", 1), (0,), (case(device="cpu"),), TINY, gpu=UUID)
    assert cpu.placement.environment()["CUDA_VISIBLE_DEVICES"] == ""


def run_job(job: protocol.WorkerJob, faults: str = "") -> tuple[list[CaseResult], list[dict[str, Any]], int]:
    """Run ``job`` on the simulated GPU; the results, the runtime reports and the number of workers spawned."""
    results: list[CaseResult] = []
    runtimes: list[dict[str, Any]] = []
    spawns: list[int] = []
    executor = LocalExecutor(extra_env={"DLBENCH_FAKE_GPU": "1", "DLBENCH_FAKE_FAULTS": faults},
                             trace=lambda event, key, when, pid: spawns.append(pid) if event == "spawn" else None)
    executor.run(job, results.append, lambda key, info: runtimes.append(info))
    return results, runtimes, len(spawns)


def test_gpu_and_cpu_workers_record_what_they_could_see() -> None:
    gpu_job = protocol.WorkerJob(WorkerKey("fake", "gpu", 1), (0,), (case(),), TINY, gpu=UUID)
    results, runtimes, _ = run_job(gpu_job)
    assert [r.status for r in results] == ["ok"]
    assert runtimes[0]["settings"]["gpu_selector"] == UUID
    assert runtimes[0]["settings"]["cuda_device_order"] == "PCI_BUS_ID"
    cpu_job = protocol.WorkerJob(WorkerKey("fake", "cpu", 1), (0,), (case(device="cpu"),), TINY, gpu=UUID)
    _, runtimes, _ = run_job(cpu_job)
    assert runtimes[0]["settings"]["CUDA_VISIBLE_DEVICES"] == "" and "gpu_selector" not in runtimes[0]["settings"]


# ----- out of memory on a GPU, and a fresh worker after it
@pytest.mark.parametrize("text", [
    "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
    "cuDNN error: CUDNN_STATUS_ALLOC_FAILED",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 123 bytes",
    "OOM when allocating tensor with shape[256,96,55,55]",
])
def test_gpu_allocation_failures_are_out_of_memory(text: str) -> None:
    assert is_oom_message(text)


def test_ordinary_errors_are_not_out_of_memory() -> None:
    assert not is_oom_message("CUDNN_STATUS_BAD_PARAM") and not is_oom_message("CUBLAS_STATUS_EXECUTION_FAILED")


def test_a_cublas_alloc_failure_is_oom_and_the_next_case_gets_a_fresh_worker() -> None:
    cases = (case(pass_="forward"), case(pass_="gradient"), case("lstm", "forward"))
    job = protocol.WorkerJob(WorkerKey("fake", "gpu", 1), (0,), cases, TINY)
    results, _, spawned = run_job(job, faults="cublas:lenet/-/forward/fake/default/gpu/b2/*")
    by_pass = {(r.case.workload, r.case.pass_): r for r in results}
    assert by_pass[("lenet", "forward")].status == "oom"
    assert "CUBLAS_STATUS_ALLOC_FAILED" in by_pass[("lenet", "forward")].error
    assert by_pass[("lenet", "gradient")].status == "ok" and by_pass[("lstm", "forward")].status == "ok"
    assert spawned == 2  # the worker that ran the failed case was replaced


def test_a_failed_gpu_case_replaces_the_worker_and_a_failed_cpu_case_does_not() -> None:
    for device, expected in (("gpu", 2), ("cpu", 1)):
        cases = (case(pass_="forward", device=device), case(pass_="gradient", device=device))
        job = protocol.WorkerJob(WorkerKey("fake", device, 1), (0,), cases, TINY)
        results, _, spawned = run_job(job, faults="raise:lenet/-/forward/*/b2/*")
        assert sorted(r.status for r in results) == ["failed", "ok"]
        assert spawned == expected


def test_only_gpu_oom_and_failed_end_a_worker() -> None:
    def result(status: str, device: str) -> CaseResult:
        return CaseResult(case=case(device=device), status=status)

    assert ends_worker(case(), result("oom", "gpu")) and ends_worker(case(), result("failed", "gpu"))
    assert not ends_worker(case(), result("unavailable", "gpu")) and not ends_worker(case(), result("ok", "gpu"))
    cpu = case(device="cpu")
    assert not ends_worker(cpu, result("failed", "cpu")) and not ends_worker(cpu, result("oom", "cpu"))


# ----- warm-up and start-up on a GPU
def test_a_gpu_worker_warms_up_with_a_convolution() -> None:
    tiny = warmup_case(case("alexnet", device="gpu", batch=256))
    assert (tiny.workload, tiny.batch_size, tiny.pass_, tiny.device) == ("lenet", 1, "gradient", "gpu")
    assert warmup_case(case("alexnet", device="cpu")).workload == "autoencoder"


def test_gpu_workers_are_given_time_to_compile_kernels_from_ptx() -> None:
    gpu = protocol.WorkerJob(WorkerKey("fake", "gpu", 1), (0,), (), TINY)
    cpu = protocol.WorkerJob(WorkerKey("fake", "cpu", 1), (0,), (), TINY)
    assert startup_timeout(gpu) == MIN_GPU_STARTUP_S >= 600
    assert startup_timeout(cpu) == max(TINY.timeout_s, MIN_STARTUP_S)


# ----- adapter-side GPU settings, checked without a GPU
def test_tensorflow_feeds_integer_arrays_as_int64_on_a_gpu_only() -> None:
    tokens, mask, labels = np.zeros((2, 5), np.int32), np.ones((2, 5), np.float32), np.zeros(2, np.int32)
    on_gpu = device_feed_arrays((tokens, mask, labels), "gpu")
    assert [a.dtype for a in on_gpu] == [np.int64, np.float32, np.int64]
    assert [a.dtype for a in device_feed_arrays((tokens, mask, labels), "cpu")] == [np.int32, np.float32, np.int32]


def test_jax_gpu_workers_may_use_95_percent_of_the_device() -> None:
    env = JaxAdapter().worker_env("gpu", 1)
    assert env["XLA_CLIENT_MEM_FRACTION"] == GPU_MEMORY_FRACTION == "0.95"
    assert env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == ""  # jaxlib refuses the deprecated name beside the new one
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert "XLA_CLIENT_MEM_FRACTION" not in JaxAdapter().worker_env("cpu", 1)


def test_the_plan_time_gpu_probe_is_placed_on_the_gpu_like_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    import dlbench.plan.gpu_probe as gpu_probe
    from dlbench.frameworks.registry import get_adapter

    class Stop(Exception):
        pass

    seen: dict[str, str] = {}

    def started(spec: Any, job: Any, timeout_s: float) -> None:
        seen.update(spec.environment())
        raise Stop

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpu_probe, "ask", started)
    with pytest.raises(Stop):
        gpu_probe.probe_gpu(get_adapter("fake"))
    assert seen["CUDA_VISIBLE_DEVICES"] == "0" and seen["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


# ----- what a GPU case records (simulated GPU, through a real worker)
def test_a_gpu_case_records_its_gpu_traits_peaks_sync_and_device_time() -> None:
    job = protocol.WorkerJob(WorkerKey("fake", "gpu", 1), (0,), (case(batch=8),), TINY, gpu=UUID)
    results, _, _ = run_job(job)
    (result,) = results
    assert result.status == "ok" and result.gpu_selector == UUID
    assert result.traits == {"layout": "NHWC", "conv": "native", "conv_backend": "cost-model"}
    memory = result.memory
    assert memory.device_peak is not None and memory.device_peak_measure is not None
    assert memory.device_peak < memory.device_peak_measure  # the first call's autotuning scratch is left out
    assert memory.device_in_use_before is not None and memory.framework_peak is None
    assert result.sync_ms is not None and len(result.device_samples_ms) == len(result.samples_ms) == 3


def test_a_cpu_case_records_no_gpu_and_its_framework_peak() -> None:
    job = protocol.WorkerJob(WorkerKey("fake", "cpu", 1), (0,), (case(device="cpu"),), TINY, gpu=UUID)
    (result,), _, _ = run_job(job)
    assert result.gpu_selector == "" and result.device_samples_ms == ()
    assert result.memory.device_peak is None and result.memory.device_in_use_before is None


def test_a_case_whose_sync_costs_more_than_5_percent_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    job = protocol.WorkerJob(WorkerKey("fake", "gpu", 1), (0,), (case(batch=2),), TINY)
    results, _, _ = run_job(job)
    assert not results[0].sync_bound  # the simulated sync is free
    monkeypatch.setenv("DLBENCH_FAKE_SYNC_US", "2000")  # a sync far above 5% of a tiny LeNet forward
    (result,), _, _ = run_job(job)
    assert result.sync_ms is not None and result.sync_ms >= 2.0 and result.sync_bound
