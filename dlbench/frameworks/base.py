"""The adapter protocol: what a framework plugin must provide so that dlbench can measure it.

Life of an adapter inside one isolated worker process (see ``dlbench.runner.worker``):

1. The parent calls :meth:`Adapter.worker_env` (cheap, no framework import) and starts the worker
   with that environment, pinned to N cores *before* anything heavy is imported.
2. In the worker, :meth:`Adapter.initialize` checks the device and thread count, then the adapter's
   :meth:`Adapter._initialize` imports the framework, applies the thread count and the precision
   settings (TF32 off, ...) and returns :class:`RuntimeInfo` (versions, backends, threads in effect,
   devices seen).
3. For each case, :meth:`Adapter.build` checks the :class:`BuildRequest` (variant, device, precision,
   phase, canonical weights), lets the adapter's :meth:`Adapter._build` turn it into a
   :class:`BuiltCase`, and checks the built model's trainable parameter count against the canonical one.
4. The measuring code calls :meth:`BuiltCase.prepare` for a pass and times the returned callable,
   calling :meth:`BuiltCase.sync` on its result before reading the clock.

The contract is enforced here, once, for every adapter (built-in or plugin): an adapter implements only
``_initialize`` and ``_build`` and never re-checks what the base class has checked. A request that names
no valid case raises :class:`~dlbench.errors.SuiteError`; a valid case this adapter cannot run (another
precision, no GPU) raises :class:`CaseUnavailable`; a broken side of the contract (weights that are not
canonical, a model with the wrong parameter count) raises :class:`ContractError`.

The adapter module itself must import no framework at module level: the parent process imports every
adapter class to list them, and a heavy import there would distort every worker's measurements.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, final

import numpy as np

from dlbench.cases.precision import device_problem, dtype_problem, get_precision
from dlbench.cases.spec import DEVICES, NATIVE_CONV, check_conv
from dlbench.errors import SuiteError
from dlbench.workloads import Batch, Workload, load_builder


class CaseUnavailable(Exception):
    """Raised by ``build`` when the adapter cannot run this case (e.g. a variant not supported on a
    device). The case is recorded with status ``unavailable``, not as a failure."""


def plugin_builder(workload: Workload, framework: str, display_name: str) -> object:
    """The builder that ``workload``'s plugin (a built-in's included) names for ``framework``, imported in
    this worker; CaseUnavailable, the same words for every adapter, when the plugin names none. What the
    builder is (a function, a class) is each adapter's own contract, which it checks."""
    builder = load_builder(workload.name, framework)
    if builder is None:
        raise CaseUnavailable(f"workload {workload.name!r} has no {display_name} implementation")
    return builder


class ContractError(RuntimeError):
    """One side of the adapter contract is broken: the request's weights are not the canonical ones, or
    the built model does not train the canonical number of parameters. A bug, never a user error: the
    runner records the case as failed and ``verify`` reports a wrong count as a failing check."""


class ParamCountError(ContractError):
    """The built model trains ``built`` scalars where the canonical workload trains ``canonical``."""

    def __init__(self, label: str, built: int, canonical: int) -> None:
        super().__init__(f"{label}: the built model has {built:,} trainable parameters, "
                         f"the canonical count is {canonical:,}")
        self.built = built
        self.canonical = canonical


@dataclass(frozen=True)
class RuntimeInfo:
    """What a worker's framework reports about itself after ``initialize``."""

    framework: str
    version: str
    threads: int | None  # intra-op threads in effect (None where the framework has no such notion)
    devices: tuple[str, ...]  # e.g. ("cpu",) or ("cpu", "gpu")
    backends: dict[str, str] = field(default_factory=dict)  # e.g. {"cuda": "12.4", "onednn": "3.5"}
    settings: dict[str, str] = field(default_factory=dict)  # e.g. {"tf32": "off", "interop_threads": "1"}


@dataclass(frozen=True)
class BuildRequest:
    """Everything needed to build one case: all of it framework-neutral."""

    workload: Workload
    phase: str  # "" for single-phase workloads
    batch: Batch  # canonical layout (NHWC images, int32 labels/tokens)
    weights: Mapping[str, np.ndarray]  # canonical layout and names, all parameters of the workload
    variant: str
    device: str  # "cpu" | "gpu"
    precision: str = "float32"
    dropout: bool = True  # False for verification: every framework then computes the same function
    conv: str = NATIVE_CONV  # how every convolution is computed (CONV_ALGORITHMS; docs/convolution.md)
    case_key: str = ""  # the Case.key being built, for logging and for the fake adapter's fault injection


@dataclass(frozen=True)
class Evaluation:
    """One forward + loss + gradient evaluation in canonical names and layouts (for ``dlbench verify``)."""

    output: np.ndarray  # logits, or the reconstruction of an autoencoder pretraining phase
    loss: float
    gradients: dict[str, np.ndarray]  # canonical parameter name -> gradient in canonical layout


class DeviceTimer(ABC):
    """Times work on the device with the framework's own events (CUDA events), beside the host's clock:
    ``start`` and ``stop`` enqueue an event on the device's stream around the work, ``elapsed_ms`` waits
    for the second and returns the device time between them."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def elapsed_ms(self) -> float: ...


class BuiltCase(ABC):
    """A model built for one (workload, phase, batch size, variant, device), ready to be timed."""

    @property
    @abstractmethod
    def trainable_params(self) -> int:
        """Number of trainable scalars of the built model (must equal the canonical count)."""

    @abstractmethod
    def prepare(self, pass_: str) -> Callable[[], Any]:
        """Return the callable that runs one ``forward`` or ``gradient`` pass over the batch (another
        name is refused with :func:`dlbench.workloads.check_pass`).

        Any tracing or ahead-of-time compilation may happen here or in the first call; both are
        timed together as ``first_call_ms`` and never enter the samples. The callable's result is a
        handle that :meth:`sync` waits on; it must not copy anything to the host.
        """

    @abstractmethod
    def sync(self, handle: Any) -> None:
        """Block until the work that produced ``handle`` is finished on the device."""

    @abstractmethod
    def evaluate(self) -> Evaluation:
        """Forward output, loss and gradients in canonical layout, copied to NumPy (verification only)."""

    def dtypes(self) -> dict[str, str]:
        """The dtypes this case really computes with: ``activation`` (the output of its first matmul or
        convolution) and ``output``, as NumPy-style names (``float32``, ``bfloat16``, ``float16``).

        Read from the built computation itself (a traced graph, a probe call), never from the request, so
        that a framework silently running float32 shows up: :func:`check_precision` compares them with the
        requested precision, and the result row records them. An adapter that cannot tell returns ``{}``,
        and then only float32 cases can run.
        """
        return {}

    def traits(self) -> dict[str, str]:
        """How this case is implemented, where frameworks differ in ways a reader must know to compare them,
        read from the built case and recorded in its result row:

        * ``layout``: the memory layout of the image activations in effect (``NCHW``, ``NHWC`` or
          ``channels_last``, PyTorch's NCHW-indexed tensors stored NHWC); conv nets only.
        * ``conv``: the convolution algorithm that ran (``native``, ``im2col``, ``fft``, ``direct``), and
          ``conv_backend``: what the framework says computed the native convolutions (PyTorch's selected
          backend, oneDNN or Eigen, XLA's compiled op), so that a switch that did nothing is visible;
          conv nets only.
        * ``recurrence``: ``fused`` when the LSTM runs as one framework op over all steps (cuDNN's RNN
          kernel on a GPU), ``unfused`` when it is a loop of per-step ops (``tf.scan``, ``lax.scan``, a Python
          loop over a cell).

        Empty where none applies."""
        return {}

    def device_timer(self) -> DeviceTimer | None:
        """A timer on the device's own clock, where the framework has one (PyTorch's ``torch.cuda.Event``
        on a GPU); None elsewhere (CPUs, and TensorFlow and JAX, which expose no device events)."""
        return None

    def reset_peak_memory(self) -> None:
        """Reset the framework's own peak-memory counter, if it has one."""
        return None

    def peak_memory_bytes(self, pass_: str) -> int | None:
        """The framework's own peak memory for the pass just run (device allocator, or a compiled
        executable's memory analysis); None where the framework has no such counter."""
        return None

    def framework_flops(self, pass_: str) -> float | None:
        """FLOPs of one pass as counted by the framework itself (e.g. a compiled cost analysis)."""
        return None

    def close(self) -> None:
        """Release the model's memory before the next case is built."""
        return None


def check_precision(request: BuildRequest, built: BuiltCase) -> dict[str, str]:
    """The dtypes ``built`` computes with, after checking that they are the requested precision's; a
    mismatch makes the case ``unavailable`` with the dtypes seen (never a silent float32 run). Called by
    :meth:`Adapter.build` for every case."""
    seen = built.dtypes()
    if request.precision == "float32" and not seen:
        return seen  # adapters written before precisions existed: float32 is all they do
    problem = dtype_problem(request.precision, seen)
    if problem is not None:
        raise CaseUnavailable(problem)
    return seen


class Adapter(ABC):
    """A framework plugin. Registered under the entry-point group ``dlbench.adapters``."""

    name: ClassVar[str]  # registry name, e.g. "torch"
    display_name: ClassVar[str]  # e.g. "PyTorch"
    module: ClassVar[str]  # import name of the framework, used to check installation cheaply
    distributions: ClassVar[tuple[str, ...]]  # pip distribution names to read the version from
    variants: ClassVar[tuple[str, ...]]
    default_variant: ClassVar[str]
    variant_help: ClassVar[dict[str, str]] = {}
    precisions: ClassVar[tuple[str, ...]] = ("float32",)  # what the adapter implements (see dlbench.cases.precision)
    hidden: ClassVar[bool] = False  # hidden adapters (the fake) are only run when named explicitly
    # Variants that exist for some workloads only (an attention implementation: the transformer). On any
    # other workload such a variant is unavailable, and plans leave those cases out.
    variant_workloads: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Variants that exist on some devices only (cuDNN autotuning: GPUs); elsewhere they are unavailable.
    variant_devices: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Variants whose switch is an environment variable read when the framework is imported (TensorFlow's
    # TF_ENABLE_ONEDNN_OPTS, XLA_FLAGS): their cases run in a worker of their own with these set.
    variant_env: ClassVar[dict[str, dict[str, str]]] = {}
    # The convolution algorithms the adapter implements (dlbench.cases.spec.CONV_ALGORITHMS).
    conv_algorithms: ClassVar[tuple[str, ...]] = (NATIVE_CONV,)

    def applies(self, variant: str, workload: str) -> bool:
        """Whether ``variant`` means anything for ``workload`` (see :attr:`variant_workloads`)."""
        only = self.variant_workloads.get(variant)
        return only is None or workload in only

    # ----- cheap queries, run in the parent process (no framework import) -----
    def is_installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def installed_distribution(self) -> str | None:
        """The first of :attr:`distributions` that pip has installed (a framework may ship under several
        names, e.g. ``tensorflow`` and ``tensorflow-cpu``, and the name can tell what the build supports)."""
        for dist in self.distributions:
            try:
                importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
            return dist
        return None

    def version(self) -> str | None:
        dist = self.installed_distribution()
        return None if dist is None else importlib.metadata.version(dist)

    def supports_gpu_build(self) -> bool:
        """Whether the installed build can use a GPU at all, judged without importing the framework
        (e.g. a ``+cpu`` wheel or ``tensorflow-cpu`` cannot). The parent also requires NVML to see a GPU."""
        return True

    def gpu_usable(self, gpus: list[dict[str, Any]]) -> bool:
        """Whether a GPU case can run here, given the GPUs that NVML reports on this host."""
        return bool(gpus) and self.supports_gpu_build()

    def worker_env(self, device: str, threads: int) -> dict[str, str]:
        """Environment variables the worker must have before the framework is imported."""
        return {}

    @final
    def process_env(self, device: str, threads: int, process: str = "") -> dict[str, str]:
        """The environment of a worker: :meth:`worker_env`, and the switches of the variant ``process``
        that needs a worker of its own (see :attr:`variant_env`; "" for the shared worker)."""
        return {**self.worker_env(device, threads), **self.variant_env.get(process, {})}

    def own_process(self, variant: str) -> bool:
        """Whether the cases of ``variant`` need a worker of their own (see :attr:`variant_env`)."""
        return variant in self.variant_env

    def device_memory_in_use(self, device: str) -> int | None:
        """Bytes the framework's allocator holds on ``device`` now (GPU workers; None where there is no
        such counter). Read before each case is built: what earlier cases left behind shows as a rise."""
        return None

    # ----- in the worker: the contract, checked here once for every adapter -----
    def preload(self, device: str) -> None:
        """Import the framework's modules, and nothing more: no op, no thread pool, no backend.

        A worker started ahead of its turn (:mod:`dlbench.process.gate`) calls this before it is pinned to its
        cores, so that several workers can import at once on all cores while nothing is measured; everything
        that reads the affinity or the thread settings must wait for :meth:`initialize`. The default imports
        nothing (the import then happens in ``initialize``, pinned, as for any worker); an adapter whose
        import has a side effect that must come first (such as TensorFlow's block of JAX) does it here too."""
        return None

    @final
    def initialize(self, device: str, threads: int) -> RuntimeInfo:
        """Check ``device`` and ``threads``, then let the adapter import and configure its framework."""
        check_device(device)
        if threads < 1:
            raise SuiteError(f"threads must be at least 1, not {threads}")
        return self._initialize(device, threads)

    @final
    def build(self, request: BuildRequest) -> BuiltCase:
        """Check the request, let the adapter build the model, check the model's parameter count and the
        dtypes it computes with (see :func:`check_precision`)."""
        self.check_request(request)
        built = self._build(request)
        canonical = request.workload.trainable_params(request.phase)
        if built.trainable_params != canonical:
            label = f"{self.name} {request.workload.name} {request.phase}".strip()
            error = ParamCountError(label, built.trainable_params, canonical)
            try:
                built.close()  # release the model before the next case is built
            finally:
                raise error
        try:
            check_precision(request, built)
        except CaseUnavailable:
            built.close()
            raise
        return built

    def check_request(self, request: BuildRequest) -> None:
        """The request names a case of this adapter (else SuiteError) that it implements (else
        CaseUnavailable), and carries every canonical weight in its canonical shape (else ContractError)."""
        if request.variant not in self.variants:
            raise SuiteError(f"unknown {self.display_name} variant {request.variant!r}; "
                             f"variants: {', '.join(self.variants)}")
        check_device(request.device)
        request.workload.phase(request.phase)  # SuiteError for an unknown phase
        if not self.applies(request.variant, request.workload.name):
            raise CaseUnavailable(f"the {self.display_name} variant {request.variant!r} applies to "
                                  f"{', '.join(self.variant_workloads[request.variant])} only")
        only_on = self.variant_devices.get(request.variant)
        if only_on is not None and request.device not in only_on:
            raise CaseUnavailable(f"the {self.display_name} variant {request.variant!r} runs on "
                                  f"{', '.join(only_on)} only")
        check_conv(request.conv)
        if request.conv != NATIVE_CONV and not request.workload.has_convolutions:
            raise CaseUnavailable(f"{request.workload.name} has no convolution: only conv {NATIVE_CONV!r} applies")
        if request.conv not in self.conv_algorithms:
            raise CaseUnavailable(f"the {self.display_name} adapter implements the convolution algorithms "
                                  f"{', '.join(self.conv_algorithms)}, not {request.conv!r}")
        get_precision(request.precision)  # SuiteError for an unknown precision
        reason = device_problem(request.precision, request.device)  # e.g. tf32 on a CPU
        if reason is not None:
            raise CaseUnavailable(reason)
        if request.precision not in self.precisions:
            raise CaseUnavailable(f"the {self.display_name} adapter runs {', '.join(self.precisions)} only, "
                                  f"not {request.precision}")
        for spec in request.workload.params:
            weight = request.weights.get(spec.name)
            if weight is None:
                raise ContractError(f"the weights of {request.workload.name} lack {spec.name!r}")
            if tuple(weight.shape) != spec.shape:
                raise ContractError(f"weight {spec.name!r} has shape {tuple(weight.shape)}, "
                                    f"canonical {spec.shape}")

    # ----- what each adapter implements -----
    @abstractmethod
    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        """Import the framework, apply ``threads`` and precision settings, report what is in effect.
        ``device`` is one of :data:`dlbench.cases.spec.DEVICES` and ``threads`` at least 1."""

    @abstractmethod
    def _build(self, request: BuildRequest) -> BuiltCase:
        """Build the canonical model for ``request`` with its weights and batch placed on the device. The
        request has passed :meth:`check_request`; raise CaseUnavailable for a case this adapter or machine
        cannot run (no GPU, a workload the adapter does not implement)."""


def check_device(device: str) -> None:
    """The one check of a device name, for ``initialize``, ``build`` and ``worker_env``."""
    if device not in DEVICES:
        raise SuiteError(f"unknown device {device!r}; devices: {', '.join(DEVICES)}")
