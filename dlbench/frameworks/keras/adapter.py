"""The Keras adapters, one per backend: ``keras-jax``, ``keras-tensorflow``, ``keras-torch``.

Each one is its backend's native adapter plus Keras: the worker's environment is the native adapter's
(:meth:`Adapter.worker_env`: thread variables, platforms, matmul precision) with ``KERAS_BACKEND`` (and, for
PyTorch, ``KERAS_TORCH_DEVICE``) set before anything is imported, ``initialize`` lets the native adapter import
and configure the backend (thread pools, TF32 off, the JAX import block of TensorFlow workers) and then imports
Keras, and ``build`` calls the workload's Keras builder (:mod:`dlbench.workloads.keras_models`): a function of
no arguments that returns an uncompiled Keras 3 model. A builder that raises or returns something else fails
its cases with one line; a workload without a Keras model is ``unavailable``.

Hidden, as the fake adapter is: a default run does not list them, a run given a Keras model
(``keras:lenet=pkg.mod:fn`` or ``keras:pkg.mod:fn``) adds them, and ``--framework keras-jax`` names one.
float32 on CPUs only (never tried on a GPU); single-phase workloads whose output is logits (the loss is
softmax cross-entropy).
"""

from __future__ import annotations

from typing import Any, ClassVar

from dlbench.frameworks.base import Adapter, BuildRequest, BuiltCase, CaseUnavailable, RuntimeInfo, plugin_builder
from dlbench.frameworks.jax.adapter import JaxAdapter
from dlbench.frameworks.keras.bindings import bind
from dlbench.frameworks.keras.case import KerasCase, KerasJaxCase, KerasTensorFlowCase, KerasTorchCase
from dlbench.frameworks.tensorflow.adapter import TensorFlowAdapter
from dlbench.frameworks.tensorflow.runtime import _block_jax_import
from dlbench.frameworks.torch.adapter import TorchAdapter
from dlbench.workloads.keras_models import KERAS_BUILDER, working_directory_importable


class KerasModelError(RuntimeError):
    """The Keras builder raised, or returned something that is not a Keras 3 model (one line)."""


def build_model(keras: Any, builder: object, workload: str) -> Any:
    """The builder's model, checked: a ``keras.Model`` (KerasModelError, one line, otherwise)."""
    if not callable(builder):
        raise KerasModelError(f"the Keras builder of {workload!r} is not a function ({type(builder).__name__})")
    try:
        with working_directory_importable():
            model = builder()
    except Exception as exc:  # noqa: BLE001 - the user's code: its error, in one line
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise KerasModelError(f"the Keras builder of {workload!r} raised {type(exc).__name__}: {first}") from None
    if not isinstance(model, keras.Model):
        raise KerasModelError(f"the Keras builder of {workload!r} returned {type(model).__name__}, "
                              f"not a Keras 3 keras.Model")
    return model


class KerasAdapter(Adapter):
    """A Keras 3 model on one backend; subclasses name the backend, its native adapter and its case."""

    backend: ClassVar[str]
    native_type: ClassVar[type[Adapter]]
    case_type: ClassVar[type[KerasCase]]
    module: ClassVar[str] = "keras"
    distributions: ClassVar[tuple[str, ...]] = ("keras",)
    hidden: ClassVar[bool] = True
    precisions: ClassVar[tuple[str, ...]] = ("float32",)

    def __init__(self) -> None:
        self._native = self.native_type()
        self._keras: Any = None

    def is_installed(self) -> bool:
        return super().is_installed() and self._native.is_installed()

    def supports_gpu_build(self) -> bool:
        """Not tried on a GPU yet: CPU only."""
        return False

    def worker_env(self, device: str, threads: int) -> dict[str, str]:
        return {**self._native.worker_env(device, threads), "KERAS_BACKEND": self.backend}

    def preload(self, device: str) -> None:
        """The backend's modules, then Keras's (``KERAS_BACKEND`` is in the environment already); Keras's import
        runs no op of its backend, so the thread settings of ``initialize`` still apply."""
        self._native.preload(device)
        import keras  # noqa: F401

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        native = self._native.initialize(device, threads)
        import keras

        seen = keras.backend.backend()
        if seen != self.backend:
            raise RuntimeError(f"Keras runs on {seen}, not {self.backend} (KERAS_BACKEND was set too late)")
        self._keras = keras
        backends = {**native.backends, self.backend: native.version}
        settings = {**native.settings, "keras_backend": seen, "floatx": str(keras.config.floatx())}
        return RuntimeInfo(self.name, str(keras.__version__), native.threads, native.devices, backends, settings)

    def _build(self, request: BuildRequest) -> BuiltCase:
        workload, keras = request.workload, self._keras
        if keras is None:
            raise RuntimeError(f"{type(self).__name__}.initialize() must run before build()")
        if request.device != "cpu":
            raise CaseUnavailable("the Keras adapters run on CPUs only (not tried on a GPU yet)")
        phase = workload.phase(request.phase)
        if workload.has_phases or phase.frozen or phase.output != "logits":
            raise CaseUnavailable(f"a Keras model runs single-phase workloads with logits only, not "
                                  f"{workload.name} {request.phase}".rstrip())
        builder = plugin_builder(workload, KERAS_BUILDER, "Keras")
        keras.utils.clear_session()  # fresh layer names and state for every case
        model = build_model(keras, builder, workload.name)
        bound, matched = bind(model, workload, request.phase)
        return self.case_type(keras, model, bound, matched, request)


class KerasJaxAdapter(KerasAdapter):
    name: ClassVar[str] = "keras-jax"
    display_name: ClassVar[str] = "Keras (JAX)"
    backend: ClassVar[str] = "jax"
    native_type: ClassVar[type[Adapter]] = JaxAdapter
    case_type: ClassVar[type[KerasCase]] = KerasJaxCase
    variants: ClassVar[tuple[str, ...]] = ("jit",)
    default_variant: ClassVar[str] = "jit"
    variant_help: ClassVar[dict[str, str]] = {
        "jit": "model.stateless_call and jax.grad of the loss, jax.jit-compiled ahead of time"}


class KerasTensorFlowAdapter(KerasAdapter):
    name: ClassVar[str] = "keras-tensorflow"
    display_name: ClassVar[str] = "Keras (TensorFlow)"
    backend: ClassVar[str] = "tensorflow"
    native_type: ClassVar[type[Adapter]] = TensorFlowAdapter
    case_type: ClassVar[type[KerasCase]] = KerasTensorFlowCase
    variants: ClassVar[tuple[str, ...]] = ("function",)
    default_variant: ClassVar[str] = "function"
    variant_help: ClassVar[dict[str, str]] = {
        "function": "the model's call and a tf.GradientTape step, each traced into a tf.function"}


class KerasTorchAdapter(KerasAdapter):
    name: ClassVar[str] = "keras-torch"
    display_name: ClassVar[str] = "Keras (PyTorch)"
    backend: ClassVar[str] = "torch"
    native_type: ClassVar[type[Adapter]] = TorchAdapter
    case_type: ClassVar[type[KerasCase]] = KerasTorchCase
    variants: ClassVar[tuple[str, ...]] = ("eager",)
    default_variant: ClassVar[str] = "eager"
    variant_help: ClassVar[dict[str, str]] = {
        "eager": "eager: the model's call under torch.inference_mode, torch.autograd.grad of the loss"}

    def worker_env(self, device: str, threads: int) -> dict[str, str]:
        """Keras picks a CUDA device whenever PyTorch sees one: the case's device, said before import."""
        return {**super().worker_env(device, threads), "KERAS_TORCH_DEVICE": "cuda" if device == "gpu" else "cpu"}

    def preload(self, device: str) -> None:
        _block_jax_import()  # before Keras is imported (see _initialize)
        super().preload(device)

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        """Keras on PyTorch imports JAX when it is installed (about 95 MB of RSS that would be billed to the
        case, as TensorFlow's import of JAX would be): blocked, as the TensorFlow adapter blocks it."""
        blocked = _block_jax_import()
        info = super()._initialize(device, threads)
        settings = {**info.settings, "jax_import_blocked": "yes" if blocked else "no (jax was already imported)"}
        return RuntimeInfo(info.framework, info.version, info.threads, info.devices, info.backends, settings)
