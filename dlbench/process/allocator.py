"""The C heap of a child: glibc's ``malloc`` in its steady state from the first allocation on.

glibc serves a request above its *mmap threshold* with fresh pages from ``mmap`` and gives them back on
``free``; below it, from its heap, whose free top it gives back (trims) once it exceeds the *trim threshold*.
By default both thresholds are dynamic: the mmap threshold starts at 128 KiB and rises to the size of each
mmapped block freed (up to 32 MiB on 64-bit), the trim threshold to twice that. A loop that allocates and
frees the same large buffers every iteration, as a framework's pass does on CPU, so gets them as fresh pages
(which the kernel faults in and zeroes again, every time) until the thresholds have risen past them, and from
the heap after: the same code in a fresh process and in one that ran something larger before differs by up to
a fifth of a PyTorch CPU gradient, in page faults alone (docs/measurement.md, "Fidelity").

A child therefore starts with both thresholds fixed where glibc's own dynamic ones end up (32 MiB and 64 MiB):
every process is from the start in the state a long-running training loop reaches anyway, whatever ran before
it, and buffers above 32 MiB still come from ``mmap`` as in any glibc process. Fixing a threshold also stops
its adjustment, which is the point. Where the user set any of glibc's malloc variables (or a malloc tunable in
``GLIBC_TUNABLES``), the child inherits those and dlbench sets nothing. Other allocators (jemalloc or tcmalloc
through ``LD_PRELOAD``, musl) ignore the variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: where the dynamic one stops
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES  # what glibc sets it to when the mmap threshold rises
MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
USER_MALLOC_ENV = (*MALLOC_ENV, "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")  # any of these: the user's choice


def malloc_settings(environ: Mapping[str, str]) -> list[str]:
    """The glibc malloc settings in ``environ``, as ``NAME=value`` (empty: glibc's dynamic defaults)."""
    settings = [f"{name}={environ[name]}" for name in USER_MALLOC_ENV if name in environ]
    tunables = environ.get("GLIBC_TUNABLES", "")
    return settings + ([f"GLIBC_TUNABLES={tunables}"] if "glibc.malloc." in tunables else [])


def allocator_environment(inherited: Mapping[str, str] | None = None) -> dict[str, str]:
    """The malloc variables a child gets (none where the user set their own)."""
    if malloc_settings(os.environ if inherited is None else inherited):
        return {}
    return dict(zip(MALLOC_ENV, (str(MMAP_THRESHOLD_BYTES), str(TRIM_THRESHOLD_BYTES)), strict=True))


def allocator_setting(environ: Mapping[str, str] | None = None) -> str:
    """How this process's heap was set up, as a worker's runtime settings record it."""
    settings = malloc_settings(os.environ if environ is None else environ)
    return " ".join(settings) or "glibc defaults (dynamic mmap and trim thresholds)"
