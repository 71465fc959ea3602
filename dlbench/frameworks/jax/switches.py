"""The JAX variants that are XLA switches: an ``XLA_FLAGS`` value read when jaxlib initialises, so each runs in a
worker of its own (``Adapter.variant_env``). Every flag was checked against the installed jaxlib 0.10.2: XLA
refuses an unknown flag at start-up (``Unknown flag in XLA_FLAGS``) and an unknown enum value of a known one,
and ``XLA_FLAGS=--help`` lists them with their defaults. What each CPU switch changes is visible in the
``conv_backend`` trait, read from the compiled module (:func:`dlbench.frameworks.jax.compiled.conv_backend`).

CPU, as found in jaxlib 0.10.2:

* By default XLA:CPU hands every convolution it can to **YNNPACK** (XNNPACK's successor; its default
  ``xla_cpu_experimental_ynn_fusion_type`` list holds ``individual_dot`` and ``individual_convolution``,
  although the flag's help text still says "empty"): ``conv_backend`` ``ynnpack:convolution``. Convolutions
  YNNPACK does not take (the input gradient of AlexNet's stride-4 conv1) stay XLA's own.
* ``no_ynnpack_conv`` removes ``individual_convolution`` from that list
  (``--xla_cpu_experimental_ynn_fusion_type=-individual_convolution``), so XLA computes every convolution
  itself (its Eigen-based convolution thunk): ``xla:convolution``. Matrix multiplies stay with YNNPACK, so
  the switch changes the convolutions only.
* No switch puts convolutions on **oneDNN** or **XNNPACK** in this version, so there is no such variant:
  ``--xla_cpu_use_onednn`` and ``--xla_cpu_experimental_onednn_fusion_type`` fuse dots, eltwise ops and
  reductions only (the flag lists no convolution type); ``--xla_cpu_experimental_onednn_custom_call`` (the
  old ``__onednn$convolution`` rewriter) needs a jaxlib built with ``ENABLE_ONEDNN_ASYNC`` and leaves this
  wheel's convolutions unchanged; ``--xla_cpu_use_xnnpack`` (on by default) and
  ``--xla_cpu_experimental_xnn_fusion_type`` take dots, eltwise ops and reductions, never a convolution.
  ``--xla_cpu_use_thunk_runtime`` is marked deprecated and changes nothing.

GPU (no GPU here: written against the installed jaxlib's flag list and help text, and unit-tested on the
environment they set):

* ``no_autotune``: ``--xla_gpu_autotune_level=0`` ("0 = off"; default 4): XLA takes cuDNN's and cuBLAS's
  first (heuristic) algorithm for every convolution and GEMM instead of timing the candidates.
* ``deterministic``: ``--xla_gpu_deterministic_ops=true`` ("Guarantees run-to-run determinism on GPU"):
  deterministic convolution algorithms and reductions only (a superset of
  ``--xla_gpu_exclude_nondeterministic_ops``).
"""

from __future__ import annotations

import os

from dlbench.workloads import WORKLOADS
from dlbench.workloads.definitions import LAYER_WORKLOADS

YNN_CONV_OFF = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
GPU_NO_AUTOTUNE = "--xla_gpu_autotune_level=0"
GPU_DETERMINISTIC = "--xla_gpu_deterministic_ops=true"

# variant -> its XLA flags, the devices where it exists, its help line
SWITCH_FLAGS: dict[str, tuple[str, ...]] = {
    "no_ynnpack_conv": (YNN_CONV_OFF,),
    "no_autotune": (GPU_NO_AUTOTUNE,),
    "deterministic": (GPU_DETERMINISTIC,),
}
SWITCH_VARIANTS: tuple[str, ...] = tuple(SWITCH_FLAGS)
SWITCH_DEVICES: dict[str, tuple[str, ...]] = {"no_ynnpack_conv": ("cpu",), "no_autotune": ("gpu",),
                                              "deterministic": ("gpu",)}
CONV_WORKLOADS: tuple[str, ...] = (*(w.name for w in WORKLOADS.values() if w.has_convolutions), *LAYER_WORKLOADS)
# A switch of the convolutions only means something where there are convolutions.
SWITCH_WORKLOADS: dict[str, tuple[str, ...]] = {"no_ynnpack_conv": CONV_WORKLOADS}
SWITCH_HELP: dict[str, str] = {
    "no_ynnpack_conv": f"CPU: as jit, but XLA computes every convolution itself (XLA_FLAGS={YNN_CONV_OFF}) "
                       "instead of handing it to YNNPACK, XLA:CPU's default for convolutions in jaxlib 0.10; "
                       "no jaxlib 0.10 switch puts convolutions on oneDNN or XNNPACK",
    "no_autotune": f"GPU: as jit, without XLA's cuDNN/cuBLAS algorithm autotuning (XLA_FLAGS={GPU_NO_AUTOTUNE})",
    "deterministic": f"GPU: as jit, deterministic ops only (XLA_FLAGS={GPU_DETERMINISTIC})",
}


def xla_flags(*flags: str, inherited: str | None = None) -> str:
    """``XLA_FLAGS`` for a worker: the flags the parent already has (the environment's ``XLA_FLAGS``, or
    ``inherited``) followed by ``flags``. XLA applies the flags in order, so the variant's own come last and win
    a conflict, while every other flag the user set still reaches the worker."""
    before = os.environ.get("XLA_FLAGS", "") if inherited is None else inherited
    return " ".join(part for part in (before.strip(), *flags) if part)


def switch_env(inherited: str | None = None) -> dict[str, dict[str, str]]:
    """``Adapter.variant_env`` of the switch variants. The adapter sets no ``XLA_FLAGS`` of its own in
    ``worker_env``, so the variant's value is the parent's ``XLA_FLAGS`` plus its flags, which
    ``Adapter.process_env`` then puts over the inherited environment."""
    return {variant: {"XLA_FLAGS": xla_flags(*flags, inherited=inherited)} for variant, flags in SWITCH_FLAGS.items()}
