"""The JAX adapter (the ``jax`` entry point): what a worker's environment must say before JAX is imported,
the runtime information of ``initialize``, and ``build``, which checks the device and the precision and
hands back a :class:`dlbench.frameworks.jax.case.JaxCase`.

Variants: ``jit`` (the default), ``jit_reduce_window`` (LeNet's pools by ``lax.reduce_window``; networks
only, a layer benchmark has no pool), ``plain_attention`` (transformer only), and the XLA switches of
:mod:`dlbench.frameworks.jax.switches`, each in a worker of its own: ``no_ynnpack_conv`` (CPU: XLA's own
convolutions instead of YNNPACK's), ``no_autotune`` and ``deterministic`` (GPU). jaxlib 0.10.2 has no switch
that puts convolutions on oneDNN or XNNPACK (see that module), so there is no such variant.
Every convolution algorithm (``native``, ``im2col``, ``fft``, ``direct``: :mod:`.convolution`) runs in every
variant, on LeNet, AlexNet and the layer benchmarks.
"""

from __future__ import annotations

import importlib.metadata
import os
from typing import ClassVar

from dlbench.cases.precision import get_precision
from dlbench.cases.spec import CONV_ALGORITHMS
from dlbench.frameworks.base import Adapter, BuildRequest, BuiltCase, CaseUnavailable, RuntimeInfo, check_device
from dlbench.frameworks.jax.case import JaxCase
from dlbench.frameworks.jax.networks import ATTENTION_VARIANTS, network_for
from dlbench.frameworks.jax.precision import MATMUL_PRECISION, precision_problem
from dlbench.frameworks.jax.switches import SWITCH_DEVICES, SWITCH_HELP, SWITCH_VARIANTS, SWITCH_WORKLOADS, switch_env
from dlbench.workloads import WORKLOADS

CUDA_PLUGIN_DISTRIBUTIONS = ("jax-cuda13-plugin", "jax-cuda12-plugin")
# The share of GPU memory JAX's allocator may use. Without preallocation JAX still caps its BFC allocator at
# 75% of the device, while PyTorch's caching allocator and TensorFlow (memory growth) may take nearly all of
# it: at 0.95 a case that does not fit is ``oom`` at about the same size in all three. The name is JAX's
# current one; the deprecated XLA_PYTHON_CLIENT_MEM_FRACTION is blanked, since jaxlib refuses both at once.
GPU_MEMORY_FRACTION = "0.95"
GPU_MEMORY_ENV: dict[str, str] = {"XLA_CLIENT_MEM_FRACTION": GPU_MEMORY_FRACTION,
                                  "XLA_PYTHON_CLIENT_MEM_FRACTION": ""}


def _cuda_versions() -> dict[str, str]:
    """CUDA runtime, driver and cuDNN versions as the JAX CUDA plugin sees them (empty without one).
    Uses ``jax._src.lib.cuda_versions``, JAX's own hook for this; guarded because it is private."""
    try:
        from jax._src.lib import cuda_versions
    except ImportError:
        return {}
    if cuda_versions is None:
        return {}
    found: dict[str, str] = {}
    probes = (
        ("cuda_runtime", "cuda_runtime_get_version"),
        ("cuda_driver", "cuda_driver_get_version"),
        ("cudnn", "cudnn_get_version"),
    )
    for key, attr in probes:
        try:
            found[key] = str(getattr(cuda_versions, attr)())
        except Exception:  # version probes are informative only
            continue
    return found


def _jax_platforms(device: str) -> str:
    """``JAX_PLATFORMS`` for a worker: only the requested platform, so that a CPU run on a GPU machine
    does not initialise CUDA."""
    check_device(device)
    return "cpu" if device == "cpu" else "cuda"


class JaxAdapter(Adapter):
    """JAX on CPU or CUDA, compiled with ``jax.jit`` ahead of time."""

    name: ClassVar[str] = "jax"
    display_name: ClassVar[str] = "JAX"
    module: ClassVar[str] = "jax"
    distributions: ClassVar[tuple[str, ...]] = ("jax",)
    variants: ClassVar[tuple[str, ...]] = ("jit", "jit_reduce_window", "plain_attention", *SWITCH_VARIANTS)
    default_variant: ClassVar[str] = "jit"
    variant_workloads: ClassVar[dict[str, tuple[str, ...]]] = {
        **{v: ("transformer",) for v in ATTENTION_VARIANTS},
        "jit_reduce_window": tuple(WORKLOADS),  # a layer benchmark has no pool: it would repeat jit
        **SWITCH_WORKLOADS,
    }
    variant_devices: ClassVar[dict[str, tuple[str, ...]]] = dict(SWITCH_DEVICES)
    # XLA_FLAGS is read when jaxlib starts: the parent's own XLA_FLAGS, then the switch (switches.switch_env)
    variant_env: ClassVar[dict[str, dict[str, str]]] = switch_env()
    conv_algorithms: ClassVar[tuple[str, ...]] = CONV_ALGORITHMS
    precisions: ClassVar[tuple[str, ...]] = ("float32", "tf32", "bf16", "fp16")
    variant_help: ClassVar[dict[str, str]] = {
        "jit": "jax.jit, ahead-of-time compiled; non-overlapping 2x2 max pools as reshape + max; "
               "transformer attention by jax.nn.dot_product_attention",
        "jit_reduce_window": "jax.jit, ahead-of-time compiled; every max pool via lax.reduce_window",
        "plain_attention": "transformer only: jax.jit, attention as einsum, masked softmax, einsum "
                           "instead of jax.nn.dot_product_attention",
        **SWITCH_HELP,
    }

    def supports_gpu_build(self) -> bool:
        """A CUDA plugin distribution is installed, or an old-style jaxlib with ``+cuda`` in its version."""
        for dist in CUDA_PLUGIN_DISTRIBUTIONS:
            try:
                importlib.metadata.version(dist)
                return True
            except importlib.metadata.PackageNotFoundError:
                continue
        try:
            return "cuda" in importlib.metadata.version("jaxlib")
        except importlib.metadata.PackageNotFoundError:
            return False

    def worker_env(self, device: str, threads: int) -> dict[str, str]:
        """No thread flag (JAX ignores them; the runner pins affinity). No preallocation, so that GPU
        memory is measurable; only the requested platform, so that a CPU run on a GPU machine does not
        initialise CUDA; fp32 matmuls in full precision."""
        env = {
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
            "JAX_PLATFORMS": _jax_platforms(device),
            "JAX_DEFAULT_MATMUL_PRECISION": MATMUL_PRECISION,
        }
        if device == "gpu":
            env.update(GPU_MEMORY_ENV)
        return env

    def device_memory_in_use(self, device: str) -> int | None:
        """The GPU allocator's ``bytes_in_use`` (``Device.memory_stats()``; None on a CPU)."""
        if device != "gpu":
            return None
        import jax

        stats = jax.devices("gpu")[0].memory_stats() or {}
        value = stats.get("bytes_in_use")
        return int(value) if value is not None else None

    def preload(self, device: str) -> None:
        import jax  # noqa: F401  (the backend, which reads the affinity, starts in initialize)

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        import jax
        import jaxlib

        platform = device  # dlbench's device names are JAX's platform names
        jax.config.update("jax_default_matmul_precision", MATMUL_PRECISION)
        try:
            devices = jax.devices(platform)
        except RuntimeError as exc:
            raise RuntimeError(
                f"JAX has no {platform} backend here ({exc}); "
                "install a CUDA build of JAX, e.g. pip install 'jax[cuda12]'"
            ) from exc
        seen = []
        for candidate in ("cpu", "gpu"):
            try:
                if jax.devices(candidate):
                    seen.append(candidate)
            except RuntimeError:
                continue
        affinity = len(os.sched_getaffinity(0))
        backends = {"jaxlib": jaxlib.__version__, "xla_platform": str(devices[0].client.platform_version)}
        if platform == "gpu":
            backends.update(_cuda_versions())
            backends["device_kind"] = str(devices[0].device_kind)
        settings = {
            "platform": platform,
            "matmul_precision": str(jax.config.jax_default_matmul_precision),  # type: ignore[attr-defined]
            "affinity_cores": str(affinity),
            "requested_threads": str(threads),
            "thread_control": "cpu affinity (JAX has no thread API)",
        }
        if platform == "gpu":
            settings["preallocate"] = os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "true (JAX default)")
            settings["memory_fraction"] = (os.environ.get("XLA_CLIENT_MEM_FRACTION")
                                           or os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION") or "0.75 (JAX default)")
        return RuntimeInfo("jax", jax.__version__, affinity, tuple(seen), backends, settings)

    def _build(self, request: BuildRequest) -> BuiltCase:
        import jax

        network = network_for(request.workload, request.phase, request.variant, request.conv)
        platform = request.device
        try:
            device = jax.devices(platform)[0]
        except RuntimeError as exc:
            raise CaseUnavailable(f"JAX has no {platform} device here") from exc
        problem = precision_problem(request.precision, device)
        if problem is not None:
            raise CaseUnavailable(problem)
        case = JaxCase(request, network, device)
        if get_precision(request.precision).mixed:
            problem = case.lowering_problem()
            if problem is not None:
                case.close()
                raise CaseUnavailable(f"JAX cannot run this network in {request.precision} on {platform}: {problem}")
        return case
