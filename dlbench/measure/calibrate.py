"""Machine peak: float32 matrix-multiply GFLOP/s per CPU thread count, so a report can say what share of
the machine a framework reached ("310 GFLOP/s" means little; "71% of the 1-thread matmul peak" does).

Each thread count is measured in its own child process, a job on the process kit (:mod:`dlbench.process`)
placed exactly like a benchmark worker of ``run``: pinned to N cores and with ``OMP/MKL/OPENBLAS_NUM_THREADS=N``
in its environment *before* NumPy (and so its BLAS thread pool) is loaded (a BLAS pool, like a framework's, is
sized once at start-up), and killed with its parent. The child times ``a @ b`` with the project's own measuring loop
(:func:`dlbench.measure.timing.measure`: first call apart, warm-up, blocks, adaptive stop) and reports the
median, its confidence interval and the best sample as GFLOP/s (2 n^3 FLOPs per product).

Low precisions (``precision="bf16"`` or ``"fp16"``): NumPy has no bfloat16 and no float16 BLAS, so their
child times the product with PyTorch (oneDNN/MKL kernels, ``torch.set_num_threads(N)``), and also times
float32 with the same library, so that the bf16/float32 ratio compares kernels of one library. Stored apart
from the float32 NumPy peak: ``environment["calibration_precisions"][precision][threads]``.

GPU (:func:`calibrate_gpu`): one child on the GPU times ``a @ b`` on the device for each precision, with
PyTorch where it has CUDA (``torch.cuda.synchronize`` after each product; float32 with TF32 off, ``tf32`` with
it on, ``bf16``/``fp16`` as such), else with JAX (``block_until_ready``; float32 at ``highest`` matmul
precision, ``tf32`` at ``high``). The size is larger (:data:`GPU_SIZE`): a GPU needs big products to approach its
peak. Stored as ``environment["calibration_gpu"][precision]``, so that GPU rows get a "% of peak" against the
peak of their own precision. Not run on real GPU hardware yet: written against the PyTorch and JAX
documentation, tested for its plumbing only.

This module is also the child's job module, so it imports nothing heavy at module level.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from dlbench.cases.precision import MIXED_DTYPES
from dlbench.errors import DlbenchError
from dlbench.process.child import Cause, ChildSpec, Ending, ask
from dlbench.process.messages import Channel, Codec, Message
from dlbench.process.placement import Placement, place

DEFAULT_SIZE = 2048  # 17 GFLOP per product: large enough for BLAS to reach its peak on a few cores
DEFAULT_TIMEOUT_S = 300.0
REPORTED_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Calibration is one short, stable kernel: tighter and longer than a smoke suite, shorter than a case.
DEFAULT_MEASURE = {"warmup_s": 0.3, "min_block_s": 0.05, "min_samples": 7, "max_samples": 50,
                   "min_time_s": 1.0, "max_time_s": 6.0, "target_rel_ci": 0.02}


@dataclass(frozen=True)
class Calibrated(Message):
    """The child's one message: the entry of its thread count."""

    kind = "calibrated"
    entry: dict[str, Any]


CODEC = Codec(Calibrated)
LOW_PRECISION_DTYPES = MIXED_DTYPES


def calibrate(threads: list[int], size: int = DEFAULT_SIZE, measure: dict[str, Any] | None = None,
              timeout_s: float = DEFAULT_TIMEOUT_S, python: str = sys.executable,
              precision: str = "float32") -> dict[int, dict[str, Any]]:
    """Measure the matmul peak of ``precision`` (float32 with NumPy, or bf16/fp16 with PyTorch) for each
    thread count, each in its own pinned child process.

    Returns ``{threads: {"gflops": median GFLOP/s, "gflops_ci_low", "gflops_ci_high", "gflops_best",
    "median_ms", "n_samples", "size", "dtype", "cores", "cpu_per_wall", "blas", "numpy"}}``; store it as
    ``environment["calibration"] = {str(n): entry}``.
    """
    counts = sorted(set(threads))
    if not counts:
        raise DlbenchError("calibrate needs at least one thread count")
    if any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in counts):
        raise DlbenchError(f"thread counts must be positive integers, got {threads}")
    if size < 1:
        raise DlbenchError(f"matrix size must be positive, got {size}")
    if precision != "float32" and precision not in LOW_PRECISION_DTYPES:
        raise DlbenchError(f"no matmul calibration for precision {precision!r} "
                           f"(float32, {', '.join(LOW_PRECISION_DTYPES)}; tf32 is GPU-only)")
    config = {**DEFAULT_MEASURE, **(measure or {})}
    results: dict[int, dict[str, Any]] = {}
    for n in counts:
        try:
            placement = place(n)
        except ValueError as exc:
            raise DlbenchError(f"cannot calibrate {n} threads: {exc}") from None
        results[n] = _run_child(placement, size, config, timeout_s, python, precision)
    return results


GPU_SIZE = 8192  # 1.1 TFLOP per product: milliseconds on a current GPU, enough for its clocks to settle
GPU_PRECISIONS = ("float32", "tf32", "bf16", "fp16")


def calibrate_gpu(precisions: list[str], size: int = GPU_SIZE, measure: dict[str, Any] | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S, python: str = sys.executable,
                  env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Measure the GPU's matmul peak for each precision in one child on the GPU (``env``: e.g. the GPU the
    run's workers use). Returns ``{precision: entry}`` (the entry as in :func:`calibrate`, plus ``device``
    and ``library``); store it as ``environment["calibration_gpu"]``."""
    wanted = list(dict.fromkeys(precisions))
    unknown = [p for p in wanted if p not in GPU_PRECISIONS]
    if not wanted or unknown:
        raise DlbenchError(f"no GPU matmul calibration for {', '.join(unknown) or 'no precision'} "
                           f"(precisions: {', '.join(GPU_PRECISIONS)})")
    if size < 1:
        raise DlbenchError(f"matrix size must be positive, got {size}")
    config = {**DEFAULT_MEASURE, **(measure or {})}
    spec = ChildSpec(module=__name__, placement=place(1, device="gpu"), codec=CODEC, python=python, env=env or {})
    ending = ask(spec, {"size": size, "measure": config, "device": "gpu", "precisions": wanted}, timeout_s)
    if isinstance(ending, Calibrated):
        return dict(ending.entry)
    if not isinstance(ending, Ending):
        raise DlbenchError(f"GPU calibration sent an unexpected {type(ending).__name__}")
    if ending.cause is Cause.TIMEOUT:
        raise DlbenchError(f"GPU calibration took longer than {timeout_s:g} s")
    raise DlbenchError(f"GPU calibration failed: {ending.last_line or ending.detail}")


def _run_child(placement: Placement, size: int, config: dict[str, Any], timeout_s: float,
               python: str, precision: str = "float32") -> dict[str, Any]:
    threads = placement.threads
    spec = ChildSpec(module=__name__, placement=placement, codec=CODEC, python=python)
    ending = ask(spec, {"size": size, "measure": config, "precision": precision}, timeout_s)
    if isinstance(ending, Calibrated):
        return {**ending.entry, "threads": threads}
    if not isinstance(ending, Ending):
        raise DlbenchError(f"calibration with {threads} thread(s) sent an unexpected {type(ending).__name__}")
    if ending.cause is Cause.TIMEOUT:
        raise DlbenchError(f"calibration with {threads} thread(s) took longer than {timeout_s:g} s")
    reason = ending.last_line or ending.detail
    raise DlbenchError(f"calibration with {threads} thread(s) failed: {reason}")


def child_main(job: dict[str, Any], channel: Channel) -> None:
    """Entry point in the child (called by the kit's boot, already pinned): measure and report."""
    if job.get("device") == "gpu":
        channel.send(Calibrated(measure_gpu_matmul(int(job["size"]), dict(job["measure"]), list(job["precisions"]))))
        return
    precision = str(job.get("precision", "float32"))
    if precision == "float32":
        channel.send(Calibrated(measure_matmul(int(job["size"]), dict(job["measure"]))))
    else:
        channel.send(Calibrated(measure_low_precision_matmul(int(job["size"]), dict(job["measure"]), precision)))


def measure_matmul(size: int, config: dict[str, Any]) -> dict[str, Any]:
    """In the child (pinned, thread variables set): import NumPy and time float32 ``a @ b``."""
    import numpy as np

    from dlbench.measure.timing import MeasureConfig, measure
    from dlbench.statistics.samples import summarize

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)

    def product() -> np.ndarray:
        return np.matmul(a, b, out=out)  # NumPy is synchronous: the result is ready when this returns

    timing = measure(lambda: product, lambda _: None, MeasureConfig(**config))
    summary = summarize(timing.samples_ms)
    flop = 2.0 * size**3

    def gflops(ms: float) -> float:
        return float(f"{flop / (ms / 1e3) / 1e9:.6g}")

    return {
        "gflops": gflops(summary.median), "gflops_ci_low": gflops(summary.ci_high),
        "gflops_ci_high": gflops(summary.ci_low), "gflops_best": gflops(summary.min),
        "median_ms": float(f"{summary.median:.6g}"), "n_samples": summary.n,
        "iterations_per_sample": timing.iterations_per_sample,
        "first_call_ms": round(timing.first_call_ms, 3),
        "cpu_per_wall": round(timing.cpu_per_wall, 3), "size": size, "dtype": "float32",
        "cores": sorted(os.sched_getaffinity(0)), "blas": blas_name(), "numpy": np.__version__,
        "thread_env": {name: os.environ.get(name, "") for name in REPORTED_ENV},
    }


def measure_low_precision_matmul(size: int, config: dict[str, Any], precision: str) -> dict[str, Any]:
    """In the child (pinned): import PyTorch and time ``a @ b`` in ``precision`` and in float32."""
    try:
        import torch
    except ImportError:
        raise SystemExit(f"calibrating {precision} needs PyTorch (NumPy has no {precision} matmul)") from None

    from dlbench.measure.timing import MeasureConfig, measure
    from dlbench.statistics.samples import summarize

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    flop = 2.0 * size**3

    def timed(dtype: Any) -> tuple[Any, Any]:
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=generator).to(dtype)
        b = torch.randn(size, size, generator=generator).to(dtype)
        out = torch.empty(size, size, dtype=dtype)

        def product() -> Any:
            return torch.matmul(a, b, out=out)  # CPU tensors: ready when it returns

        timing = measure(lambda: product, lambda _: None, MeasureConfig(**config))
        return timing, summarize(timing.samples_ms)

    def gflops(ms: float) -> float:
        return float(f"{flop / (ms / 1e3) / 1e9:.6g}")

    timing, summary = timed(getattr(torch, LOW_PRECISION_DTYPES[precision]))
    _, full = timed(torch.float32)
    return {
        "gflops": gflops(summary.median), "gflops_ci_low": gflops(summary.ci_high),
        "gflops_ci_high": gflops(summary.ci_low), "gflops_best": gflops(summary.min),
        "median_ms": float(f"{summary.median:.6g}"), "n_samples": summary.n,
        "iterations_per_sample": timing.iterations_per_sample, "first_call_ms": round(timing.first_call_ms, 3),
        "cpu_per_wall": round(timing.cpu_per_wall, 3), "size": size, "dtype": LOW_PRECISION_DTYPES[precision],
        "precision": precision, "library": f"torch {torch.__version__}",
        "float32_same_library_gflops": gflops(full.median),
        "cores": sorted(os.sched_getaffinity(0)), "thread_env": {n: os.environ.get(n, "") for n in REPORTED_ENV},
    }


def measure_gpu_matmul(size: int, config: dict[str, Any], precisions: list[str]) -> dict[str, dict[str, Any]]:
    """In the child: time ``a @ b`` on the GPU in each precision, with PyTorch (CUDA) or else JAX."""
    from dlbench.measure.timing import MeasureConfig, measure
    from dlbench.statistics.samples import summarize

    product, sync, library = _gpu_matmul_library()
    flop = 2.0 * size**3

    def gflops(ms: float) -> float:
        return float(f"{flop / (ms / 1e3) / 1e9:.6g}")

    found = {}
    for precision in precisions:
        timing = measure(_prepared(product(size, precision)), sync, MeasureConfig(**config))
        summary = summarize(timing.samples_ms)
        found[precision] = {
            "gflops": gflops(summary.median), "gflops_ci_low": gflops(summary.ci_high),
            "gflops_ci_high": gflops(summary.ci_low), "gflops_best": gflops(summary.min),
            "median_ms": float(f"{summary.median:.6g}"), "n_samples": summary.n,
            "iterations_per_sample": timing.iterations_per_sample, "first_call_ms": round(timing.first_call_ms, 3),
            "size": size, "precision": precision, "device": "gpu", "library": library,
        }
    return found


def _prepared(fn: Any) -> Any:
    """What :func:`~dlbench.measure.timing.measure` calls to get the timed callable: ``fn`` itself."""
    return lambda: fn


def _gpu_matmul_library() -> tuple[Any, Any, str]:
    """``(make_product(size, precision), sync, library)`` for the GPU: PyTorch with CUDA, else JAX on a GPU."""
    try:
        import torch

        if torch.cuda.is_available():
            return _torch_gpu_product, lambda _: torch.cuda.synchronize(), f"torch {torch.__version__}"
    except ImportError:
        pass
    try:
        import jax

        if jax.devices("gpu"):
            return _jax_gpu_product, lambda out: out.block_until_ready(), f"jax {jax.__version__}"
    except (ImportError, RuntimeError):
        pass
    raise SystemExit("calibrating the GPU needs PyTorch with CUDA or JAX with a GPU backend; neither sees a GPU")


def _torch_gpu_product(size: int, precision: str) -> Any:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"  # float32 means full float32
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    generator = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(size, size, device="cuda", generator=generator).to(dtype)
    b = torch.randn(size, size, device="cuda", generator=generator).to(dtype)
    out = torch.empty(size, size, device="cuda", dtype=dtype)
    return lambda: torch.matmul(a, b, out=out)


def _jax_gpu_product(size: int, precision: str) -> Any:
    import jax
    import jax.numpy as jnp

    dtype = {"bf16": jnp.bfloat16, "fp16": jnp.float16}.get(precision, jnp.float32)
    matmul_precision = "high" if precision == "tf32" else "highest"
    keys = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(keys[0], (size, size), dtype)
    b = jax.random.normal(keys[1], (size, size), dtype)
    product = jax.jit(lambda x, y: jnp.matmul(x, y, precision=matmul_precision))
    return lambda: product(a, b)


def blas_name() -> str:
    """Which BLAS NumPy was built against (OpenBLAS, MKL, Accelerate): it sets the peak."""
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except (KeyError, TypeError, ValueError, AttributeError):
        return "unknown"
