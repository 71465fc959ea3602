"""``TensorFlowAdapter``: the runtime set-up and information of ``initialize``, and ``build``, which puts a
case together from the other modules of :mod:`dlbench.frameworks.tensorflow` (the table of networks by
workload is the ``dlbench.workloads`` registry: a network is a ``_Network`` subclass in its own module, named by
its workload plugin, see :func:`tf_network_type`).
"""

from __future__ import annotations

from types import ModuleType
from typing import ClassVar

from dlbench.cases.precision import get_precision
from dlbench.frameworks.base import Adapter, BuildRequest, CaseUnavailable, RuntimeInfo, plugin_builder
from dlbench.frameworks.tensorflow.case import TensorFlowCase
from dlbench.frameworks.tensorflow.convolution import TF_CONV_ALGORITHMS
from dlbench.frameworks.tensorflow.layer import _ConvLayer
from dlbench.frameworks.tensorflow.networks import KERAS_LSTM, _Network
from dlbench.frameworks.tensorflow.precision import _precision_problem
from dlbench.frameworks.tensorflow.runtime import (
    _block_jax_import,
    _configure_devices,
    _onednn_enabled,
    _Runtime,
    _runtime_info,
    _set_threads,
    device_feed_arrays,
)
from dlbench.workloads import Workload

# The library switches: environment variables that TensorFlow reads once, when it is loaded or at their first
# use, so each of these variants runs in a worker of its own with them set (Adapter.variant_env). The names
# are those the installed TensorFlow reads (strings of libtensorflow_framework.so.2 in 2.21, which the tests
# check): TF_ENABLE_ONEDNN_OPTS ("0" keeps oneDNN's rewrite of the CPU kernels off; TF logs the state at
# import), TF_CUDNN_USE_AUTOTUNE (xla/tsl/util/use_cudnn.cc, a boolean, default true) and TF_DETERMINISTIC_OPS
# (tsl's determinism.cc, a boolean read strictly: "1" or "true", anything else but "0"/"false" aborts).
EIGEN = "eigen"
NO_AUTOTUNE = "no_autotune"
DETERMINISTIC = "deterministic"
DETERMINISTIC_SEED = 0  # the global seed of the deterministic variant: TF's random ops refuse to run without one

VARIANTS: tuple[str, ...] = ("function", "xla", "eager", "keras_attention", KERAS_LSTM, EIGEN, NO_AUTOTUNE,
                             DETERMINISTIC)

def tf_network_type(workload: Workload) -> type[_Network]:
    """The TensorFlow builder of ``workload``: a ``_Network`` subclass, constructed with ``(tf, request)``
    (docs/plugins.md); the layer benchmarks all share ``_ConvLayer``. CaseUnavailable when its plugin names
    none."""
    if workload.is_layer:
        return _ConvLayer
    builder = plugin_builder(workload, "tensorflow", "TensorFlow")
    if not (isinstance(builder, type) and issubclass(builder, _Network)):
        raise TypeError(f"the TensorFlow builder of {workload.name!r} is not a _Network subclass")
    return builder


class TensorFlowAdapter(Adapter):
    """TensorFlow 2 (``tf.function`` by default, XLA and eager as variants)."""

    name: ClassVar[str] = "tensorflow"
    display_name: ClassVar[str] = "TensorFlow"
    module: ClassVar[str] = "tensorflow"
    distributions: ClassVar[tuple[str, ...]] = (
        "tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly"
    )
    variants: ClassVar[tuple[str, ...]] = VARIANTS
    default_variant: ClassVar[str] = "function"
    variant_workloads: ClassVar[dict[str, tuple[str, ...]]] = {"keras_attention": ("transformer",),
                                                               KERAS_LSTM: ("lstm",)}
    variant_devices: ClassVar[dict[str, tuple[str, ...]]] = {EIGEN: ("cpu",), NO_AUTOTUNE: ("gpu",),
                                                             DETERMINISTIC: ("gpu",)}
    variant_env: ClassVar[dict[str, dict[str, str]]] = {
        EIGEN: {"TF_ENABLE_ONEDNN_OPTS": "0"},
        NO_AUTOTUNE: {"TF_CUDNN_USE_AUTOTUNE": "0"},
        DETERMINISTIC: {"TF_DETERMINISTIC_OPS": "1"},
    }
    conv_algorithms: ClassVar[tuple[str, ...]] = TF_CONV_ALGORITHMS
    precisions: ClassVar[tuple[str, ...]] = ("float32", "tf32", "bf16", "fp16")
    variant_help: ClassVar[dict[str, str]] = {
        "function": "tf.function graphs (Grappler, oneDNN fusions): how TF 2 is normally run",
        "xla": "tf.function(jit_compile=True): XLA-compiled graphs",
        "eager": "op-by-op eager execution, no tf.function",
        "keras_attention": "transformer only: tf.function with keras.layers.MultiHeadAttention for the "
                           "attention instead of plain tf ops",
        KERAS_LSTM: "lstm only: tf.function with keras.layers.LSTM, which runs cuDNN's fused kernel on a GPU "
                    "(the default tf.scan loop is unfused) and Keras' own loop on a CPU",
        EIGEN: "CPU only: tf.function with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0 before import), so convolutions "
               "and matmuls run on Eigen's kernels",
        NO_AUTOTUNE: "GPU only: tf.function with cuDNN autotuning off (TF_CUDNN_USE_AUTOTUNE=0): TF's "
                     "heuristic convolution algorithm instead of the fastest one measured at the first call",
        DETERMINISTIC: "GPU only: tf.function with op determinism (TF_DETERMINISTIC_OPS=1 and "
                       "enable_op_determinism, seeded): deterministic cuDNN algorithms and reductions",
    }

    def __init__(self) -> None:
        self._runtime: _Runtime | None = None

    def supports_gpu_build(self) -> bool:
        """``tensorflow-cpu`` wheels contain no CUDA kernels; every other distribution may."""
        dist = self.installed_distribution()
        return dist is not None and dist != "tensorflow-cpu"

    def worker_env(self, device: str, threads: int) -> dict[str, str]:
        """Quiet C++ logging (the info banners), and the thread counts and GPU memory growth also as
        environment, so that they hold from the moment TF loads, before ``initialize`` repeats them."""
        env = {
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_NUM_INTRAOP_THREADS": str(threads),
            "TF_NUM_INTEROP_THREADS": "1",
        }
        if device == "gpu":
            env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        return env

    def device_memory_in_use(self, device: str) -> int | None:
        """``get_memory_info(device)["current"]``: bytes TensorFlow's allocator has handed out now."""
        if device != "gpu" or self._runtime is None:
            return None
        try:
            return int(self._runtime.tf.config.experimental.get_memory_info(self._runtime.memory_device)["current"])
        except ValueError:
            return None

    def preload(self, device: str) -> None:
        _block_jax_import()  # must precede the TensorFlow import
        import tensorflow  # noqa: F401, PLC0415  (no op yet: the thread settings still apply)

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        jax_blocked = _block_jax_import()  # must precede the TensorFlow import
        import tensorflow as tf  # noqa: PLC0415  (heavy: only ever in the worker)

        _set_threads(tf, threads)
        _configure_devices(tf, device)
        tf.constant(0.0)  # first op: the runtime starts with the settings above, so reading back is honest
        self._runtime = _Runtime(tf=tf, device=device)
        return _runtime_info(tf, device, jax_blocked)

    def _build(self, request: BuildRequest) -> TensorFlowCase:
        runtime = self._runtime
        if runtime is None:
            raise RuntimeError("TensorFlowAdapter.initialize() must run before build()")
        if request.device != runtime.device:
            raise RuntimeError(f"worker initialised for {runtime.device}, case asks for {request.device}")
        network_type = tf_network_type(request.workload)
        tf = runtime.tf
        problem = _precision_problem(tf, request.precision, request.device)
        if problem is not None:
            raise CaseUnavailable(problem)
        _apply_variant_switches(tf, request.variant)
        if request.device == "gpu":  # process-wide; the cases of a worker are built and run one at a time
            tf.config.experimental.enable_tensor_float_32_execution(request.precision == "tf32")
        with tf.device(runtime.device_name):
            network = network_type(tf, request)
            feeds = tuple(tf.identity(tf.constant(a))
                          for a in device_feed_arrays(network.feed_arrays(request.batch), request.device))
        loss_scale = get_precision(request.precision).loss_scale
        case = TensorFlowCase(runtime, network, feeds, request.variant, request.dropout, loss_scale)
        try:
            case.probe_dtypes()
        except Exception as exc:  # noqa: BLE001  e.g. no kernel for a low-precision op on this device
            if request.precision == "float32":
                raise
            raise CaseUnavailable(f"TensorFlow cannot build this network in {request.precision} on "
                                  f"{request.device}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        if request.precision == "tf32":
            case.note_dtype("matmul", "tf32")
        return case


def _apply_variant_switches(tf: ModuleType, variant: str) -> None:
    """What a library-switch variant needs in the process besides its environment (Adapter.variant_env):
    ``eigen`` is refused where oneDNN is on after all (a worker without ``TF_ENABLE_ONEDNN_OPTS=0``, or a
    build that ignores it), instead of measuring oneDNN under Eigen's name; ``deterministic`` also enables op
    determinism through the API (the same switch as its environment variable) and sets the global seed,
    without which TF's random ops (dropout) refuse to run under determinism."""
    if variant == EIGEN and _onednn_enabled(tf):
        raise CaseUnavailable("the eigen variant needs TF_ENABLE_ONEDNN_OPTS=0 before TensorFlow is imported; "
                              "oneDNN is on in this process")
    if variant == DETERMINISTIC:
        tf.config.experimental.enable_op_determinism()
        tf.random.set_seed(DETERMINISTIC_SEED)
