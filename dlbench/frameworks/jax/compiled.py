"""What is read from a compiled JAX executable (XLA's FLOP count, whether its HLO loops over float work, which
library computes its convolutions), and the traits of a case (the layout of its convolutions, whether its
recurrence is fused).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from dlbench.cases.spec import NATIVE_CONV
from dlbench.frameworks.jax.convolution import SCOPE_PREFIX
from dlbench.frameworks.jax.layers import CONV_DIMS
from dlbench.workloads.definitions import LAYER_PREFIX

_WHILE_LOOP = re.compile(r"\bwhile\(")  # an HLO while instruction in Compiled.as_text()
# jax.random's scopes in HLO metadata op_names: the threefry bit generator loops inside them
_PRNG_SCOPE = re.compile(r"threefry|random_bits|jit\(_uniform\)|jit\(_bernoulli\)")
CONV_WORKLOADS = ("lenet", "alexnet")

# Reading Compiled.as_text(): a computation starts on an unindented line ending in "{" (``%fused_computation
# (...) -> ... {``, ``ENTRY %main.4 (...) -> ... {``); an instruction is ``%name = <shape> <opcode>(...)``.
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_HEAVY_OP = re.compile(r"=\s.*?[\]})]\s(convolution|dot|fft|custom-call)\(")
_CALLS = re.compile(r"\bcalls=%?([\w.\-]+)")
_FUSION_KIND = re.compile(r'"kind":"(__[\w$]+)"')
_TARGET = re.compile(r'custom_call_target="([^"]+)"')
_OP_NAME = re.compile(r'op_name="([^"]*)"')
# The libraries XLA hands a fusion to (backend_config fusion_config kind), and the custom-call targets that
# are library calls, each with the operation it computes.
LIBRARY_FUSIONS = {"__ynn_fusion": "ynnpack", "__xnn_fusion": "xnnpack", "__onednn_fusion": "onednn",
                   "__triton_gemm": "triton", "__triton": "triton", "__cudnn$fusion": "cudnn"}
LIBRARY_CALLS = (("__cudnn$conv", "cudnn:convolution"), ("__onednn$convolution", "onednn:convolution"),
                 ("__onednn$matmul", "onednn:dot"), ("__cublas", "cublas:dot"))


def _library_call(target: str) -> str | None:
    for prefix, label in LIBRARY_CALLS:
        if target.startswith(prefix):
            return label
    return None


def compiled_backends(hlo: str) -> list[tuple[str, str]]:
    """Every convolution, matrix multiply and FFT of a compiled module as (``library:op``, op_name metadata):
    ``ynnpack:convolution`` for a convolution inside a fusion that XLA handed to YNNPACK, ``xla:convolution``
    for one XLA computes itself, ``cudnn:convolution`` for a cuDNN custom call, ``xla:fft``, ``cublas:dot``...
    An instruction without metadata takes that of the fusion that calls its computation."""
    computation = ""
    found: list[tuple[str, str, str]] = []  # (computation, label, op_name)
    callers: dict[str, tuple[str, str, str]] = {}  # called computation -> (library, op_name, calling computation)
    for line in hlo.splitlines():
        if not line.startswith(" "):
            header = _COMPUTATION.match(line)
            computation = header.group(1) if header else computation
            continue
        op_name = _OP_NAME.search(line)
        name = op_name.group(1) if op_name else ""
        kind = _FUSION_KIND.search(line)
        library = LIBRARY_FUSIONS.get(kind.group(1), "") if kind else ""
        for called in _CALLS.findall(line):
            callers[called] = (library, name, computation)
        heavy = _HEAVY_OP.search(line)
        if heavy is None:
            continue
        if heavy.group(1) == "custom-call":
            target = _TARGET.search(line)
            label = _library_call(target.group(1)) if target else None
            if label is not None:
                found.append((computation, label, name))
        else:
            found.append((computation, f"xla:{heavy.group(1)}", name))
    result = []
    for computation, label, name in found:
        library, seen = "", set()
        while computation in callers and computation not in seen:  # up through the fusions that call it
            seen.add(computation)
            outer, outer_name, computation = callers[computation]
            library, name = library or outer, name or outer_name
        if library and label.startswith("xla:"):
            label = f"{library}:{label.removeprefix('xla:')}"
        result.append((label, name))
    return result


def conv_backend(hlo: str, algorithm: str) -> str:
    """What computed a case's convolutions, from its compiled module: for ``native`` the library of every
    convolution (XLA's own or a library's, see :func:`compiled_backends`), for another algorithm the library
    of every matrix multiply and FFT in that algorithm's name scope (:data:`.convolution.SCOPE_PREFIX`; the
    dense layers' matmuls are not the convolution's). Distinct labels joined by ``+``, e.g.
    ``xla:convolution+ynnpack:convolution`` when YNNPACK takes some convolutions and XLA the rest;
    ``none`` if nothing was found (a module XLA simplified away)."""
    ops = compiled_backends(hlo)
    if algorithm == NATIVE_CONV:
        labels = [label for label, _ in ops if label.endswith(":convolution")]
    else:
        scope = f"{SCOPE_PREFIX}{algorithm}"
        labels = [label for label, name in ops if scope in name or not name]
    return "+".join(sorted(Counter(labels))) or "none"


def _flops_from_cost(cost: Any) -> float | None:
    """``Compiled.cost_analysis()`` returned a list of dicts in older JAX and a dict in newer ones."""
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not isinstance(cost, Mapping) or "flops" not in cost:
        return None
    flops = float(cost["flops"])
    return flops if flops > 0 else None


def _has_float_loop(hlo: str) -> bool:
    """Whether the compiled HLO has a while loop that does floating-point work (``lax.scan``). The loops
    of the threefry random-bit generator behind dropout are integer bit mixing, negligible next to the
    network, so they are ignored (recognised by the jax.random scope in their metadata; should a JAX
    version name them differently, the answer is a conservative None, never a wrong count)."""
    return any(_WHILE_LOOP.search(line) and not _PRNG_SCOPE.search(line) for line in hlo.splitlines())


def case_traits(workload: str) -> dict[str, str]:
    """The convolutions take NHWC arrays (``CONV_DIMS``; XLA may choose another physical layout on a GPU), in
    the conv nets and the layer benchmarks, and the LSTM is a ``lax.scan`` loop: unfused (see BuiltCase.traits)."""
    if workload in CONV_WORKLOADS or workload.startswith(LAYER_PREFIX):
        return {"layout": CONV_DIMS[0]}
    if workload == "lstm":
        return {"recurrence": "unfused"}
    return {}
