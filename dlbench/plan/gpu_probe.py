"""Plan-time GPU probe: does this framework really compute on the GPU here? Asked in a child process.

The plan's first check reads package metadata only (a ``+cpu`` torch wheel, ``tensorflow-cpu``), which a
broken GPU stack passes: plain ``tensorflow`` without its CUDA libraries, a CPU build of torch without the
``+cpu`` label, a CUDA wheel newer than the driver, a JAX plugin that does not match jaxlib. Each of these
only shows when the framework starts on the GPU, and a run would then record every GPU row as
``unavailable`` and exit 0. So before a GPU run the plan starts one child per framework (a job on the
process kit, :mod:`dlbench.process`, with the environment a GPU worker of that framework gets), which
initialises the framework on the GPU exactly as a worker does and runs one tiny LeNet gradient (a
convolution loads cuDNN, a matmul cuBLAS), and reports either what it found or the framework's own error.

What it found goes into the run's environment record: the framework's runtime report (versions of CUDA
and cuDNN as the framework states them) and the CUDA libraries actually loaded into the process (read from
``/proc/self/maps``), with the cuDNN and CUDA runtime versions asked of those very libraries
(``cudnnGetVersion``, ``cudaRuntimeGetVersion``): a framework's build information says what it was built
against, the loaded library says what runs.

Not run on real GPU hardware yet: written against the documentation of the three frameworks and of cuDNN.
This module is also the child's job module, so it imports nothing heavy at module level.
"""

from __future__ import annotations

import ctypes
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbench.frameworks.base import Adapter, BuildRequest
from dlbench.process.child import Cause, ChildSpec, Ending, ask
from dlbench.process.messages import Channel, Codec, Message
from dlbench.process.placement import place

# The first start of a framework on a GPU it has no native kernels for (TensorFlow compiling PTX) can take
# minutes; a probe that gives up sooner would refuse a working install.
PROBE_TIMEOUT_S = 600.0
ERROR_CHARS = 300
LIBRARIES = {"cudnn": "libcudnn", "cublas": "libcublas", "cudart": "libcudart"}


@dataclass(frozen=True)
class Probed(Message):
    kind = "gpu_probed"
    info: dict[str, Any]


@dataclass(frozen=True)
class ProbeFailed(Message):
    kind = "gpu_probe_failed"
    error: str


CODEC = Codec(Probed, ProbeFailed)


@dataclass(frozen=True)
class ProbeResult:
    """``ok`` with ``info`` (recorded in the run's environment), or the framework's error on one line."""

    framework: str
    ok: bool
    error: str = ""
    info: dict[str, Any] = field(default_factory=dict)


def one_line(text: str) -> str:
    """A framework error fit for a one-line refusal: whitespace collapsed, cut to :data:`ERROR_CHARS`."""
    flat = " ".join(text.split())
    return flat if len(flat) <= ERROR_CHARS else flat[: ERROR_CHARS - 3] + "..."


def probe_gpu(adapter: Adapter, python: str = sys.executable, timeout_s: float = PROBE_TIMEOUT_S,
              env: Mapping[str, str] | None = None, gpu: str = "") -> ProbeResult:
    """Start ``adapter``'s framework on the GPU in a child process and run one tiny case there.

    The child is placed like a GPU worker, on ``gpu`` (the run's ``--gpu``; "" = the default GPU); ``env`` is
    added on top of the adapter's GPU worker environment."""
    spec = ChildSpec(module=__name__, placement=place(1, device="gpu", gpu=gpu), codec=CODEC, python=python,
                     env={**adapter.worker_env("gpu", 1), **(env or {})})
    ending = ask(spec, {"framework": adapter.name}, timeout_s)
    if isinstance(ending, Probed):
        return ProbeResult(adapter.name, True, info=ending.info)
    if isinstance(ending, ProbeFailed):
        return ProbeResult(adapter.name, False, error=ending.error)
    if not isinstance(ending, Ending):
        return ProbeResult(adapter.name, False, error=f"the probe sent an unexpected {type(ending).__name__}")
    if ending.cause is Cause.TIMEOUT:
        return ProbeResult(adapter.name, False, error=f"no answer within {timeout_s:g} s (a first start that "
                                                       "compiles PTX for this GPU can take minutes)")
    return ProbeResult(adapter.name, False, error=one_line(f"{ending.detail}: {ending.last_line}"))


def child_main(job: dict[str, Any], channel: Channel) -> None:
    """In the child: initialise the framework on the GPU, run one tiny LeNet gradient, report."""
    from dlbench.frameworks.registry import get_adapter
    from dlbench.workloads import get_workload, initial_weights, make_batch

    adapter = get_adapter(str(job["framework"]))
    try:
        runtime = adapter.initialize("gpu", 1)
        request = BuildRequest(workload=get_workload("lenet"), phase="", batch=make_batch("lenet", 1),
                               weights=initial_weights("lenet"), variant=adapter.default_variant, device="gpu",
                               case_key="gpu-probe")
        built = adapter.build(request)
        try:
            step = built.prepare("gradient")
            built.sync(step())
        finally:
            built.close()
    except Exception as exc:  # the framework's own reason is the point of the probe
        channel.send(ProbeFailed(one_line(f"{type(exc).__name__}: {exc}")))
        return
    channel.send(Probed({"version": runtime.version, "devices": list(runtime.devices),
                         "backends": dict(runtime.backends), "loaded": loaded_cuda_libraries()}))


def loaded_cuda_libraries(maps: Path = Path("/proc/self/maps")) -> dict[str, Any]:
    """The CUDA libraries mapped into this process (``{"cudnn": {"path", "version"}, ...}``), each with the
    version the library itself reports where it has such a call."""
    try:
        text = maps.read_text()
    except OSError:
        return {}
    found: dict[str, Any] = {}
    for line in text.splitlines():
        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
        name = Path(path).name
        for key, prefix in LIBRARIES.items():
            if key not in found and re.fullmatch(rf"{prefix}\.so(\.[0-9.]+)?", name):
                found[key] = {"path": path}
    versions = {"cudnn": _cudnn_version, "cudart": _cudart_version}
    for key, entry in found.items():
        if key in versions:
            version = versions[key](entry["path"])
            if version:
                entry["version"] = version
    return found


def _cudnn_version(path: str) -> str:
    """``cudnnGetVersion()`` of the loaded cuDNN: ``major*10000 + minor*100 + patch`` from cuDNN 9 on,
    ``major*1000 + minor*100 + patch`` before."""
    try:
        raw = int(ctypes.CDLL(path).cudnnGetVersion())
    except (OSError, AttributeError):
        return ""
    major, rest = (raw // 10000, raw % 10000) if raw >= 90000 else (raw // 1000, raw % 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def _cudart_version(path: str) -> str:
    """``cudaRuntimeGetVersion`` of the loaded CUDA runtime: ``major*1000 + minor*10``."""
    try:
        value = ctypes.c_int()
        if ctypes.CDLL(path).cudaRuntimeGetVersion(ctypes.byref(value)) != 0:
            return ""
    except (OSError, AttributeError):
        return ""
    return f"{value.value // 1000}.{value.value % 1000 // 10}"
