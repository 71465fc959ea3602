"""Whether a framework brings native GPU kernels for this GPU, or compiles them from PTX when they are used.

A CUDA build ships machine code (``sm_XY`` cubins) for some compute capabilities and portable PTX
(``compute_XY``) for others. The driver runs a cubin ``sm_XY`` on a GPU of the same major version and a minor
version at least Y (an arch-specific ``sm_90a`` only on exactly 9.0); failing that it compiles PTX of a
capability at most the GPU's, just in time, at the first use of each kernel. For a framework with thousands
of kernels that first use can take many minutes (TensorFlow warns of 30 and more); CUDA caches the result
(``~/.nv/ComputeCache``, ``CUDA_CACHE_MAXSIZE``). dlbench records which case applies, so that a long first
call or start-up is explained, and gives GPU workers the time for it.

Pure functions on the capability and the framework's list of architectures (TensorFlow's
``sysconfig.get_build_info()["cuda_compute_capabilities"]``, PyTorch's ``torch.cuda.get_arch_list()``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ARCH = re.compile(r"^(sm|compute)_(\d+)(\d)([a-z]?)$")


def _parse(arch: str) -> tuple[str, int, int, bool] | None:
    match = _ARCH.match(arch.strip().lower())
    if match is None:
        return None
    kind, major, minor, suffix = match.groups()
    return kind, int(major), int(minor), bool(suffix)


def kernel_binaries(capability: tuple[int, int], archs: Iterable[str]) -> str:
    """``native sm_86``, ``PTX compute_80 (compiled when first used: minutes)`` or ``none for X.Y``."""
    major, minor = capability
    cubins, ptx = [], []
    for arch in archs:
        parsed = _parse(arch)
        if parsed is None:
            continue
        kind, a_major, a_minor, specific = parsed
        if kind == "sm" and a_major == major and (a_minor == minor if specific else a_minor <= minor):
            cubins.append((a_minor, arch))
        elif kind == "compute" and (a_major, a_minor) <= (major, minor):
            ptx.append(((a_major, a_minor), arch))
    if cubins:
        return f"native {max(cubins)[1]}"
    if ptx:
        return f"PTX {max(ptx)[1]} (no native kernels for {major}.{minor}: compiled when first used, can take minutes)"
    return f"none for {major}.{minor}"


def compiles_from_ptx(description: str) -> bool:
    """Whether a :func:`kernel_binaries` description means just-in-time compilation."""
    return description.startswith("PTX ")
