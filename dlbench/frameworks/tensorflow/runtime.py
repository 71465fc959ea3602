"""Process-level set-up of a TensorFlow worker: the JAX import block, thread pools and devices, the runtime
information that ``initialize`` reports, and the batch arrays as they are placed on the device."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from dlbench.errors import DlbenchError
from dlbench.frameworks.base import CaseUnavailable, RuntimeInfo
from dlbench.frameworks.cuda_arch import kernel_binaries

# TensorFlow objects are typed as Any: the package must not import tensorflow, and its stubs add nothing.
Tensor = Any
Variable = Any
Feeds = tuple[Tensor, ...]


@dataclass(frozen=True)
class _Runtime:
    """What ``initialize`` established for this worker process; ``build`` places everything on it."""

    tf: ModuleType
    device: str  # "cpu" | "gpu"

    @property
    def device_name(self) -> str:
        """The ``tf.device`` scope of every variable, input and traced op."""
        return "/GPU:0" if self.device == "gpu" else "/CPU:0"

    @property
    def memory_device(self) -> str:
        """The device name that ``tf.config.experimental.get_memory_info`` expects."""
        return "GPU:0" if self.device == "gpu" else "CPU:0"


def _block_jax_import() -> bool:
    """Stop TensorFlow from importing JAX behind our back; return whether the block was put in place.

    ``tensorflow/lite/python/util.py`` imports JAX whenever it is installed, which adds about 100 MB of
    RSS to every TF worker (docs/measurement.md) and would be billed to TensorFlow's memory numbers. A
    ``None`` entry in ``sys.modules`` makes ``import jax`` raise ImportError, which TF handles. If JAX is
    already imported (a test process, say) we leave it alone: removing a live module breaks its users.
    """
    if "jax" in sys.modules:
        return sys.modules["jax"] is None
    sys.modules["jax"] = None  # type: ignore[assignment]
    return True


def _set_threads(tf: ModuleType, threads: int) -> None:
    """Apply intra-op ``threads`` and one inter-op thread; TF only accepts this before its first op."""
    config = tf.config.threading
    try:
        if config.get_intra_op_parallelism_threads() != threads:
            config.set_intra_op_parallelism_threads(threads)
        if config.get_inter_op_parallelism_threads() != 1:
            config.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        raise DlbenchError(
            f"TensorFlow is already initialised in this process with "
            f"{config.get_intra_op_parallelism_threads()} intra-op threads; "
            f"{threads} threads need their own worker process"
        ) from None


def _configure_devices(tf: ModuleType, device: str) -> None:
    """GPU runs: memory growth (no grab-everything preallocation) and TF32 off (plain float32 matmuls).
    CPU runs hide the GPUs so that no op is silently placed on one."""
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu":
        if not gpus:
            raise CaseUnavailable("TensorFlow sees no GPU (CPU-only build, or no CUDA driver/libraries)")
        for gpu in gpus:
            if not tf.config.experimental.get_memory_growth(gpu):
                tf.config.experimental.set_memory_growth(gpu, True)
        tf.config.experimental.enable_tensor_float_32_execution(False)
    elif gpus and tf.config.get_visible_devices("GPU"):
        tf.config.set_visible_devices([], "GPU")


def _onednn_enabled(tf: ModuleType) -> bool:
    """Whether TF's oneDNN (formerly MKL) kernels are on. TF decides this from its build and
    ``TF_ENABLE_ONEDNN_OPTS``; the private query is the only exact answer, the environment the fallback."""
    try:
        from tensorflow.python.util import _pywrap_util_port  # noqa: PLC0415

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").lower() not in ("0", "false")


def _kernel_binaries(tf: ModuleType, build: Any) -> str:
    """Native kernels for this GPU, or PTX compiled at first use (see :mod:`dlbench.frameworks.cuda_arch`):
    TensorFlow's pip wheels carry cubins for a few capabilities and PTX for the newest only."""
    try:
        gpu = tf.config.list_physical_devices("GPU")[0]
        major, minor = tf.config.experimental.get_device_details(gpu)["compute_capability"]
    except (IndexError, KeyError, TypeError, ValueError):
        return "unknown"
    return kernel_binaries((int(major), int(minor)), build.get("cuda_compute_capabilities") or ())


def _runtime_info(tf: ModuleType, device: str, jax_blocked: bool) -> RuntimeInfo:
    build = tf.sysconfig.get_build_info()
    backends = {"onednn": "on" if _onednn_enabled(tf) else "off"}
    for key, label in (("cuda_version", "cuda"), ("cudnn_version", "cudnn")):
        if build.get(key):
            backends[label] = str(build[key])
    settings = {
        "interop_threads": str(tf.config.threading.get_inter_op_parallelism_threads()),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        "jax_import_blocked": "yes" if jax_blocked else "no (jax was already imported)",
        "eager_execution": "synchronous" if tf.config.experimental.get_synchronous_execution() else "async",
    }
    if device == "gpu":
        settings["tf32"] = "off" if not tf.config.experimental.tensor_float_32_execution_enabled() else "on"
        settings["memory_growth"] = "on"
        settings["kernel_binaries"] = _kernel_binaries(tf, build)
    devices = ("cpu", "gpu") if tf.config.get_visible_devices("GPU") else ("cpu",)
    return RuntimeInfo(
        framework="tensorflow",
        version=str(tf.__version__),
        threads=int(tf.config.threading.get_intra_op_parallelism_threads()),
        devices=devices,
        backends=backends,
        settings=settings,
    )


def device_feed_arrays(arrays: Sequence[np.ndarray], device: str) -> tuple[np.ndarray, ...]:
    """The batch arrays as they are placed on ``device``: on a GPU, integer arrays (labels, token ids)
    become int64. TensorFlow keeps int32 tensors in host memory even under ``/GPU:0`` (a legacy of its
    shape tensors), so int32 labels and token ids would be copied to the device inside every timed call;
    int64 ones live on the GPU. On a CPU there is no copy either way and the canonical int32 stays."""
    if device != "gpu":
        return tuple(arrays)
    return tuple(a.astype(np.int64) if np.issubdtype(a.dtype, np.integer) else a for a in arrays)
