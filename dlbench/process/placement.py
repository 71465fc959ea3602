"""Where a child runs: exactly N cores for N threads, the thread variables that tell every runtime so, and
the one GPU it may see.

A child gets the first N cores this process may use, and ``OMP_NUM_THREADS`` (and the other BLAS/OpenMP
variables) set to N *before* it starts: thread pools are sized once, when a library loads, so a change after
the import comes too late. The same rule serves ``run``, ``verify`` and ``calibrate``, so that "N threads"
means the same thing in all three.

GPUs are placed the same way, through the environment CUDA reads when it loads: a GPU child sees exactly one
GPU, ``CUDA_VISIBLE_DEVICES=<selector>`` with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (so that an index means the
same GPU as in ``nvidia-smi`` and NVML, whose order is the PCI bus order; CUDA's own default order is
"fastest first"). TensorFlow and JAX would otherwise create a context, and take memory, on every visible GPU.
A CPU child gets ``CUDA_VISIBLE_DEVICES=""`` and so never initialises CUDA, even where a framework would.

Every child also gets glibc's malloc thresholds fixed (:mod:`dlbench.process.allocator`), so that what ran
before in a process does not decide whether a pass's buffers come from the heap or from fresh pages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dlbench.errors import SuiteError
from dlbench.process.allocator import allocator_environment

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")
# CUDA's cache of kernels compiled from PTX (~/.nv/ComputeCache) is 256 MiB by default, too small for a
# framework built without native kernels for the GPU: then every worker would compile them again, for
# minutes. 4 GiB is the largest size CUDA accepts; a size set by the user is kept.
CUDA_CACHE_BYTES = str(4 * 2**30)
DEFAULT_GPU = "0"


@dataclass(frozen=True)
class Placement:
    """``threads`` threads on exactly these ``cores`` (one core per thread), and for a GPU child the one GPU
    it may use (``gpu``: an index in PCI bus order or a UUID, as ``CUDA_VISIBLE_DEVICES`` takes it)."""

    threads: int
    cores: tuple[int, ...]
    device: str = "cpu"
    gpu: str = ""

    def environment(self) -> dict[str, str]:
        """The thread, GPU and malloc variables a child must have in its environment from the start."""
        env = {name: str(self.threads) for name in THREAD_ENV}
        env.update(gpu_environment(self.device, self.gpu))
        env.update(allocator_environment())
        return env


def gpu_environment(device: str, gpu: str = "", inherited: Mapping[str, str] | None = None) -> dict[str, str]:
    """The CUDA variables of a child on ``device``: one GPU (``gpu``, else :func:`default_gpu`) or none."""
    if device != "gpu":
        return {"CUDA_VISIBLE_DEVICES": ""}
    inherited = os.environ if inherited is None else inherited
    # A GPU taken from dlbench's own CUDA_VISIBLE_DEVICES keeps the order it was written in; a named one is
    # in PCI bus order, nvidia-smi's.
    order = "PCI_BUS_ID" if gpu else inherited.get("CUDA_DEVICE_ORDER") or "PCI_BUS_ID"
    return {"CUDA_DEVICE_ORDER": order, "CUDA_VISIBLE_DEVICES": gpu or default_gpu(inherited),
            "CUDA_CACHE_MAXSIZE": inherited.get("CUDA_CACHE_MAXSIZE") or CUDA_CACHE_BYTES}


GPU_SELECTOR = re.compile(r"^(\d{1,4}|(GPU|MIG)-[A-Za-z0-9/_-]{1,120})$")


def check_gpu_selector(text: str, where: str = "--gpu") -> str:
    """A GPU as ``CUDA_VISIBLE_DEVICES`` takes it: an index (PCI bus order, as in ``nvidia-smi``) or a UUID
    (``GPU-...``, ``MIG-...``). One GPU only: a list would let the frameworks spread over several."""
    text = text.strip()
    if not GPU_SELECTOR.match(text):
        raise SuiteError(f"{where}: {text!r} is not one GPU; give an index such as 0 or a UUID such as "
                         "GPU-5f3c2a9e-... (nvidia-smi -L lists them)")
    return text


def default_gpu(inherited: Mapping[str, str] | None = None) -> str:
    """The GPU of a run that names none: the first one dlbench itself was given (a batch scheduler sets
    ``CUDA_VISIBLE_DEVICES`` to the GPUs it assigned: device 0 of the machine may be someone else's), else
    index 0."""
    inherited = os.environ if inherited is None else inherited
    given = [part.strip() for part in inherited.get("CUDA_VISIBLE_DEVICES", "").split(",") if part.strip()]
    return given[0] if given else DEFAULT_GPU


def available_cores() -> tuple[int, ...]:
    """The cores this process may run on (its affinity mask, which a CPU set or taskset may narrow)."""
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux: no affinity API, every core counts
        return tuple(range(os.cpu_count() or 1))


def cores_for(threads: int, allowed: Iterable[int] | None = None, reserve: int = 0) -> tuple[int, ...]:
    """The first ``threads`` cores this process may use: a child with N threads gets exactly N cores.

    ``reserve`` lowest cores are skipped whenever more than that many exist: on a Ray node they are left to
    Ray's own daemons, which would otherwise share a core with the measured worker. A local run reserves
    none (one group runs at a time and the parent only waits on a pipe).
    """
    cores = sorted(allowed) if allowed is not None else list(available_cores())
    if reserve and len(cores) > reserve:
        cores = cores[reserve:]
    if threads > len(cores):
        raise ValueError(f"{threads} threads requested but only {len(cores)} cores are available")
    return tuple(cores[:threads])


def place(threads: int, allowed: Iterable[int] | None = None, device: str = "cpu", gpu: str = "") -> Placement:
    """The placement of a child with ``threads`` threads (and on a GPU, the one GPU ``gpu`` or the default);
    ValueError when there are too few cores."""
    return Placement(threads, cores_for(threads, allowed), device, gpu)
