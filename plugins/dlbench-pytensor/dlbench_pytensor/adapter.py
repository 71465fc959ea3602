"""The PyTensor adapter (the ``pytensor`` entry point of the ``dlbench.adapters`` group): the worker's
environment (threads), the runtime information of ``initialize`` (versions, backend, BLAS, OpenMP and thread
settings in effect) and ``build``.

This module imports no PyTensor at module level: dlbench's parent process imports every adapter class to list
them. PyTensor is imported in ``initialize`` and ``build``, inside the worker.

Threads: PyTensor has no thread API. Its C backend's element-wise loops use OpenMP when ``openmp`` is on (the
flag Theano had), its dot products run in the BLAS under NumPy (OpenBLAS), Numba has its own thread pool and
XLA uses the cores it may run on. So the worker gets, before PyTensor is imported, ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``NUMBA_NUM_THREADS`` = N and ``PYTENSOR_FLAGS`` with
``openmp`` on for N > 1 (the parent's own ``PYTENSOR_FLAGS`` are kept in front), and the runner pins it to N
cores. ``initialize`` reports what PyTensor and the BLAS then say.

GPU: unavailable. PyTensor 3 has no GPU backend of its own (Theano's ``gpuarray`` backend was removed); its
JAX backend could reach a GPU through a CUDA build of JAX, which this adapter does not attempt.
"""

from __future__ import annotations

import importlib.util
import os
from typing import ClassVar

from dlbench.frameworks.base import Adapter, BuildRequest, BuiltCase, CaseUnavailable, RuntimeInfo

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
GPU_REASON = ("PyTensor 3 has no GPU backend of its own (Theano's gpuarray backend was removed); "
              "this adapter runs on CPUs only")
# Keep in step with dlbench_pytensor.modes.MODES (not imported here: cheap and import-free either way, but
# the class attributes below must not depend on anything but this module).
_VARIANT_HELP = {
    "c": "PyTensor's C backend (Theano's): generated C compiled by g++, run by the C VM; fast_run rewrites",
    "numba": "PyTensor 3's default backend: the graph JIT-compiled by Numba",
    "jax": "the graph translated to JAX and compiled by XLA (needs jax installed)",
}


def pytensor_flags(threads: int, inherited: str = "") -> str:
    """``PYTENSOR_FLAGS`` for a worker with ``threads`` threads: the inherited flags, then ``openmp``."""
    flags = [part for part in inherited.split(",") if part.strip()]
    flags.append(f"openmp={'True' if threads > 1 else 'False'}")
    return ",".join(flags)


def _blas_threads() -> dict[str, str]:
    """The BLAS libraries loaded in this process and their thread counts, where threadpoolctl is installed
    (optional: it is not a dependency); empty otherwise."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {}
    return {f"{pool.get('internal_api', '?')}:{os.path.basename(str(pool.get('filepath', '')))}":
            str(pool.get("num_threads")) for pool in threadpool_info()}


class PyTensorAdapter(Adapter):
    """PyTensor (Theano's maintained fork) on CPUs: C backend by default, Numba and JAX backends as variants."""

    name: ClassVar[str] = "pytensor"
    display_name: ClassVar[str] = "PyTensor"
    module: ClassVar[str] = "pytensor"
    distributions: ClassVar[tuple[str, ...]] = ("pytensor",)
    variants: ClassVar[tuple[str, ...]] = tuple(_VARIANT_HELP)
    default_variant: ClassVar[str] = "c"
    variant_help: ClassVar[dict[str, str]] = dict(_VARIANT_HELP)
    variant_devices: ClassVar[dict[str, tuple[str, ...]]] = {v: ("cpu",) for v in _VARIANT_HELP}
    conv_algorithms: ClassVar[tuple[str, ...]] = ("native", "im2col", "direct")

    def supports_gpu_build(self) -> bool:
        return False

    def worker_env(self, device: str, threads: int) -> dict[str, str]:
        """Thread counts for every pool PyTensor's backends may use, set before anything is imported; JAX (the
        ``jax`` variant) on the CPU platform only, without preallocation."""
        env = {name: str(threads) for name in THREAD_VARIABLES}
        env["PYTENSOR_FLAGS"] = pytensor_flags(threads, os.environ.get("PYTENSOR_FLAGS", ""))
        env["JAX_PLATFORMS"] = "cpu"
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        return env

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        if device != "cpu":
            raise RuntimeError(GPU_REASON)
        import warnings

        with warnings.catch_warnings():  # the "no C BLAS found" warning: recorded as ``blas`` below instead
            warnings.simplefilter("ignore")
            import numba
            import numpy as np
            import pytensor
            import scipy
            from pytensor.compile.mode import get_default_mode

            config = pytensor.config
            ldflags = str(config.blas__ldflags)
        affinity = len(os.sched_getaffinity(0))
        backends = {
            "numba": numba.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "cxx": str(config.cxx) or "(none: C backend unavailable)",
        }
        if importlib.util.find_spec("jax") is not None:
            import jax

            backends["jax"] = jax.__version__
        settings = {
            "default_variant": self.default_variant,
            # what an unconfigured PyTensor 3 would run (its FAST_RUN mode is the Numba linker), for the reader
            "pytensor_default_mode": f"{config.mode} ({type(get_default_mode().linker).__name__})",
            "blas__ldflags": ldflags or "(empty)",
            "blas": f"C BLAS linked: {ldflags}" if ldflags else "numpy's BLAS (no C BLAS found to link)",
            "openmp": str(config.openmp),
            "openmp_elemwise_minsize": str(config.openmp_elemwise_minsize),
            "floatX": str(config.floatX),
            "compiledir": str(config.compiledir),
            "affinity_cores": str(affinity),
            "requested_threads": str(threads),
            "numba_threads": str(numba.config.NUMBA_NUM_THREADS),
            **{name.lower(): os.environ.get(name, "") for name in THREAD_VARIABLES},
            **{f"blas_threads[{key}]": value for key, value in _blas_threads().items()},
        }
        return RuntimeInfo("pytensor", pytensor.__version__, min(threads, affinity), ("cpu",), backends, settings)

    def _build(self, request: BuildRequest) -> BuiltCase:
        from dlbench_pytensor.modes import MODES

        mode = MODES[request.variant]
        if mode.needs and importlib.util.find_spec(mode.needs) is None:
            raise CaseUnavailable(f"the PyTensor variant {request.variant!r} needs {mode.needs}, not installed")
        if request.variant == "jax" and request.conv == "native" and request.workload.has_convolutions:
            raise CaseUnavailable("PyTensor's JAX backend has no conversion of Convolve2d (the native "
                                  "convolution); use --conv im2col or direct")
        from dlbench_pytensor.case import PyTensorCase
        from dlbench_pytensor.networks import network_for

        return PyTensorCase(request, network_for(request.workload.name, request.phase), mode)
