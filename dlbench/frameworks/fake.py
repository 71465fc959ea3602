"""A fake framework: a seeded cost model that does real CPU work, and can be told to fail.

It lets every layer above the adapters (runner, store, statistics, reports, comparisons) be tested in
seconds, with no framework installed. Each pass performs a fixed, seeded amount of pure-Python integer work
proportional to the workload's MACs and batch size (divided by the thread count, a simulated speed-up), so
its times are stable on a quiet machine and really get slower when another process competes for the core.

Behaviour is steered through environment variables, which the runner passes on to the worker:

* ``DLBENCH_FAKE_FAULTS``: comma-separated ``fault:pattern`` pairs; ``pattern`` is an fnmatch pattern on
  the case key (``lenet/-/gradient/fake/default/cpu/t1/b2/float32``). Faults: ``crash`` (SIGSEGV),
  ``hang``, ``oom`` (allocates until the worker's memory limit is hit, or raises MemoryError past 4 GiB),
  ``raise`` (an exception while building), ``abort`` (SIGABRT while running), ``float32`` (the case
  silently computes in float32 whatever precision was asked: the precision check must catch it),
  ``cublas`` (the first call raises cuBLAS's ``CUBLAS_STATUS_ALLOC_FAILED``, a GPU out-of-memory),
  ``leak`` (on the simulated GPU the case's memory stays allocated after it ends).
  ``import:*`` makes ``initialize`` fail like a broken framework install.
* ``DLBENCH_FAKE_SCALE``: multiplies every cost (default 1.0: a LeNet b64 forward well under a millisecond).
* ``DLBENCH_FAKE_SLOW``: comma-separated ``pattern=factor`` pairs: a case whose key matches the fnmatch
  ``pattern`` costs ``factor`` times as much in every call, its per-call overhead included (the first
  matching pair wins). Unlike the scale, which leaves the fixed per-call overhead alone, this is an exact
  slow-down of the whole pass, for measuring the power of ``compare`` (benchmarks/ab_calibration.py).
* ``DLBENCH_FAKE_GPU=1``: pretend a GPU is present. GPU cases then have a simulated device: an allocator
  whose peak counts the batch four times, plus an "autotuning" scratch of :data:`AUTOTUNE_SCRATCH` batches in
  the first call only; an in-use counter that a ``leak`` fault leaves raised after the case; event timing
  that reads :data:`DEVICE_BUSY` of each call's wall time.
* ``DLBENCH_FAKE_SYNC_US``: microseconds of busy-waiting per ``sync`` (default 0), to simulate a framework
  whose synchronisation is costly.

Convolution algorithms: each costs :data:`CONV_FACTORS` of ``native`` and holds :data:`CONV_SCRATCH` batches of
real scratch memory while a pass runs (im2col's patch matrix, FFT's spectra), so that the report's time
against memory plot has something to show. The variant ``isolated`` needs a worker of its own
(``variant_env``), as TensorFlow without oneDNN does; ``autotune`` exists on the simulated GPU only
(``variant_devices``), as cuDNN's autotuning does.

Precisions: ``bf16`` costs :data:`PRECISION_FACTORS` of float32 everywhere; ``fp16`` and ``tf32`` run only on
the simulated GPU (like a CPU without float16 kernels, and TF32 which is GPU-only by definition).
"""

from __future__ import annotations

import fnmatch
import os
import signal
import time
from collections.abc import Callable
from typing import Any, ClassVar, cast

import numpy as np

from dlbench.cases.precision import get_precision
from dlbench.frameworks.base import (
    Adapter,
    BuildRequest,
    BuiltCase,
    CaseUnavailable,
    DeviceTimer,
    Evaluation,
    RuntimeInfo,
)
from dlbench.workloads.data import derive_seed
from dlbench.workloads.registry import load_builder

# Work units (simple integer operations of the Python loop below) per multiply-accumulate. Sized so that a
# LeNet batch-64 forward pass takes a fraction of a millisecond: fast tests, yet well above timer resolution.
UNITS_PER_MAC = 1.5e-5
BASE_UNITS = 200  # per-call overhead, like a framework's dispatch cost
GRADIENT_FACTOR = 2.5
FAST_VARIANT_FACTOR = 0.7
NOISE_SIGMA = 0.02
PRECISION_FACTORS = {"float32": 1.0, "tf32": 0.5, "bf16": 0.6, "fp16": 0.4}
OOM_CHUNK = 64 * 2**20
OOM_CAP = 4 * 2**30
AUTOTUNE_SCRATCH = 10  # batches of scratch the simulated first call takes (cuDNN autotuning, compilation)
DEVICE_BUSY = 0.9  # share of a call's wall time that the simulated device's events report
CONV_FACTORS = {"native": 1.0, "im2col": 1.3, "fft": 1.8, "direct": 1.6}
CONV_SCRATCH = {"native": 0, "im2col": 8, "fft": 12, "direct": 1}  # batches of scratch while a pass runs
ISOLATED_ENV = "DLBENCH_FAKE_ISOLATED"


class SimulatedDevice:
    """The fake GPU's allocator, shared by the cases of one worker (like a real device's)."""

    in_use = 0


def parse_faults(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        fault, _, pattern = item.partition(":")
        pairs.append((fault.strip(), pattern.strip() or "*"))
    return pairs


def fault_for(key: str, env: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    for fault, pattern in parse_faults(env.get("DLBENCH_FAKE_FAULTS", "")):
        if fnmatch.fnmatchcase(key, pattern):
            return fault
    return None


def slow_factor(key: str, env: dict[str, str] | os._Environ[str] = os.environ) -> float:
    """The injected slow-down of the case ``key`` (``DLBENCH_FAKE_SLOW``; 1.0 when none matches)."""
    for item in filter(None, (part.strip() for part in env.get("DLBENCH_FAKE_SLOW", "").split(","))):
        pattern, _, factor = item.rpartition("=")
        if fnmatch.fnmatchcase(key, pattern.strip() or "*"):
            return float(factor)
    return 1.0


def spin(units: int) -> int:
    """Deterministic CPU work: a linear congruential generator stepped ``units`` times."""
    x = 12345
    for _ in range(units):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def allocate_until_oom() -> None:
    hoard: list[np.ndarray] = []
    while len(hoard) * OOM_CHUNK < OOM_CAP:
        hoard.append(np.ones(OOM_CHUNK // 8))
    raise MemoryError("fake adapter: simulated out of memory")


class FakeCase(BuiltCase):
    def __init__(self, request: BuildRequest, threads: int, fault: str | None) -> None:
        self.request = request
        self.threads = threads
        self.fault = fault
        workload, phase = request.workload, request.phase
        self._params = workload.trainable_params(phase)
        scale = float(os.environ.get("DLBENCH_FAKE_SCALE", "1.0"))
        factor = FAST_VARIANT_FACTOR if request.variant in ("fast", "autotune") else 1.0
        if fault != "float32":
            factor *= PRECISION_FACTORS[request.precision]
        factor *= CONV_FACTORS[request.conv]
        self._scratch = request.batch.x.nbytes * CONV_SCRATCH[request.conv]
        self._units = workload.macs(phase) * request.batch.x.shape[0] * UNITS_PER_MAC * scale * factor / threads
        self._rng = np.random.default_rng(derive_seed("fake", workload.name, phase, request.variant))
        self._slow = slow_factor(request.case_key)
        self._device_peak = 0
        self._sync_s = float(os.environ.get("DLBENCH_FAKE_SYNC_US", "0")) / 1e6
        self._held = request.batch.x.nbytes if request.device == "gpu" else 0
        SimulatedDevice.in_use += self._held

    @property
    def trainable_params(self) -> int:
        return self._params

    def prepare(self, pass_: str) -> Callable[[], Any]:
        units = self._units * (GRADIENT_FACTOR if pass_ == "gradient" else 1.0)
        spin(3 * (BASE_UNITS + int(units)))  # "compilation": the first call is visibly slower than the rest
        first = [True]

        def run() -> int:
            if self.fault == "hang":
                time.sleep(10**6)
            if self.fault == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            if self.fault == "abort":
                os.abort()
            if self.fault == "oom":
                allocate_until_oom()
            if self.fault == "cublas":
                raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`")
            noise = float(self._rng.lognormal(0.0, NOISE_SIGMA))
            scratch = AUTOTUNE_SCRATCH if first[0] else 0
            first[0] = False
            self._device_peak = max(self._device_peak, self.request.batch.x.nbytes * (4 + scratch) + self._scratch)
            held = np.ones(self._scratch // 8) if self._scratch else None  # the algorithm's scratch, really held
            result = spin(int((BASE_UNITS + units * noise) * self._slow))
            del held
            return result

        return run

    def sync(self, handle: Any) -> None:
        if self._sync_s:
            end = time.perf_counter() + self._sync_s
            while time.perf_counter() < end:
                pass

    def device_timer(self) -> DeviceTimer | None:
        return SimulatedEvents() if self.request.device == "gpu" else None

    def close(self) -> None:
        if self.fault != "leak":
            SimulatedDevice.in_use -= self._held
        self._held = 0

    def dtypes(self) -> dict[str, str]:
        compute = "float32" if self.fault == "float32" else get_precision(self.request.precision).compute
        return {"activation": compute, "output": compute}

    def evaluate(self) -> Evaluation:
        raise NotImplementedError("the fake adapter computes no real model")

    def traits(self) -> dict[str, str]:
        if not self.request.workload.has_convolutions:
            return {}
        backend = "isolated" if os.environ.get(ISOLATED_ENV) == "1" else "cost-model"
        return {"layout": "NHWC", "conv": self.request.conv, "conv_backend": backend}

    def reset_peak_memory(self) -> None:
        self._device_peak = 0

    def peak_memory_bytes(self, pass_: str) -> int | None:
        return self._device_peak if self.request.device == "gpu" else None


class SimulatedEvents(DeviceTimer):
    """Device events of the simulated GPU: :data:`DEVICE_BUSY` of the wall time between them."""

    def __init__(self) -> None:
        self._begin = self._end = 0.0

    def start(self) -> None:
        self._begin = time.perf_counter()

    def stop(self) -> None:
        self._end = time.perf_counter()

    def elapsed_ms(self) -> float:
        return (self._end - self._begin) * 1e3 * DEVICE_BUSY


class FakeAdapter(Adapter):
    """The cost-model framework used by the tests; hidden from default runs."""

    name: ClassVar[str] = "fake"
    display_name: ClassVar[str] = "Fake (cost model)"
    module: ClassVar[str] = "dlbench"
    distributions: ClassVar[tuple[str, ...]] = ("dlbench",)
    variants: ClassVar[tuple[str, ...]] = ("default", "fast", "isolated", "autotune")
    default_variant: ClassVar[str] = "default"
    variant_help: ClassVar[dict[str, str]] = {
        "default": "seeded cost model",
        "fast": "the same model at 0.7x the cost, to test variant comparisons",
        "isolated": f"the default model in a worker of its own ({ISOLATED_ENV}=1 set before import)",
        "autotune": "the fast model on the simulated GPU only, like cuDNN autotuning (unavailable on a CPU)",
    }
    variant_devices: ClassVar[dict[str, tuple[str, ...]]] = {"autotune": ("gpu",)}
    variant_env: ClassVar[dict[str, dict[str, str]]] = {"isolated": {ISOLATED_ENV: "1"}}
    conv_algorithms: ClassVar[tuple[str, ...]] = tuple(CONV_FACTORS)
    hidden: ClassVar[bool] = True
    precisions: ClassVar[tuple[str, ...]] = tuple(PRECISION_FACTORS)

    def __init__(self) -> None:
        self._threads = 1

    def supports_gpu_build(self) -> bool:
        return os.environ.get("DLBENCH_FAKE_GPU") == "1"

    def gpu_usable(self, gpus: list[dict[str, Any]]) -> bool:
        return self.supports_gpu_build()  # no NVML needed: the fake GPU is simulated

    def device_memory_in_use(self, device: str) -> int | None:
        return SimulatedDevice.in_use if device == "gpu" and self.supports_gpu_build() else None

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        if any(fault == "import" for fault, _ in parse_faults(os.environ.get("DLBENCH_FAKE_FAULTS", ""))):
            raise ImportError("fake adapter: simulated broken installation (No module named 'fakeframework')")
        if device == "gpu" and not self.supports_gpu_build():
            raise RuntimeError("fake adapter: no GPU (set DLBENCH_FAKE_GPU=1)")
        self._threads = threads
        devices = ("cpu", "gpu") if self.supports_gpu_build() else ("cpu",)
        return RuntimeInfo(
            framework=self.name, version=self.version() or "0", threads=threads, devices=devices,
            backends={"cost_model": "lcg-spin"}, settings={"scale": os.environ.get("DLBENCH_FAKE_SCALE", "1.0")},
        )

    def _build(self, request: BuildRequest) -> BuiltCase:
        key = request.case_key
        fault = fault_for(key)
        if fault == "raise":
            raise RuntimeError(f"fake adapter: simulated build failure for {key}")
        if request.precision == "fp16" and request.device == "cpu":
            raise CaseUnavailable("fake adapter: no float16 kernels on CPU (simulated)")
        case = FakeCase(request, self._threads, fault)
        builder = None if request.workload.is_layer else load_builder(request.workload.name, self.name)
        if builder is not None:  # a workload plugin's fake builder: the trainable count it "built", or it raises
            case._params = int(cast(FakeBuilder, builder)(request))
        return case


# A workload plugin's builder for the fake adapter (tests of the plugin door): request -> the number of trainable
# parameters of the model it pretends to build. Workloads without one are simulated from their definition.
FakeBuilder = Callable[[BuildRequest], int]
