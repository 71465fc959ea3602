"""The compile modes of PyTensor that are this adapter's variants, and what each one records.

PyTensor compiles one graph through several backends ("linkers"), after the same graph rewrites:

* ``c``: the classic Theano backend, C code generated per op, compiled with the system's C++ compiler (cached
  in PyTensor's compile directory) and run by the C virtual machine (``cvm`` linker, ``fast_run`` rewrites).
  The issue asks for it as the default: it is what Theano was in the study. Its BLAS ops link a C BLAS only
  when ``blas__ldflags`` names one; a pip install finds none (NumPy's and SciPy's bundled OpenBLAS carry
  renamed symbols), so PyTensor computes its dot products through NumPy (``Dot``/``Gemm`` ``perform``), i.e.
  the OpenBLAS inside NumPy's wheel. Recorded as ``blas`` in the runtime information.
* ``numba``: PyTensor 3's own default (``FAST_RUN`` now means the Numba linker): the graph JIT-compiled by
  Numba, dot products through SciPy's BLAS.
* ``jax``: the graph translated to JAX and compiled by XLA (``jax.jit``); needs JAX installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_VARIANT = "c"


@dataclass(frozen=True)
class CompileMode:
    """One variant: the PyTensor linker and rewrite set, and the label recorded in every case's traits."""

    variant: str
    linker: str
    optimizer: str
    label: str
    needs: str = ""  # a module the backend imports (the JAX backend's ``jax``)
    help: str = ""

    def mode(self) -> Any:
        """The ``pytensor.compile.mode.Mode`` of this variant (PyTensor imported here: worker only)."""
        from pytensor.compile.mode import Mode

        return Mode(linker=self.linker, optimizer=self.optimizer)


MODES: dict[str, CompileMode] = {
    "c": CompileMode("c", "cvm", "fast_run", "c (cvm linker, fast_run rewrites)",
                     help="PyTensor's C backend (Theano's): generated C compiled by g++, run by the C VM; "
                          "fast_run graph rewrites"),
    "numba": CompileMode("numba", "numba", "fast_run", "numba (numba linker, fast_run rewrites)",
                         help="PyTensor 3's default backend: the graph JIT-compiled by Numba"),
    "jax": CompileMode("jax", "jax", "fast_run", "jax (jax linker, fast_run rewrites; XLA on CPU)", needs="jax",
                       help="the graph translated to JAX and compiled by XLA (needs jax installed)"),
}
VARIANTS: tuple[str, ...] = tuple(MODES)
