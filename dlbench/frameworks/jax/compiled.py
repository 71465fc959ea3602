"""What is read from a compiled JAX executable (XLA's FLOP count, whether its HLO loops over float work),
and the traits of a case (the layout of its convolutions, whether its recurrence is fused).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dlbench.frameworks.jax.layers import CONV_DIMS

_WHILE_LOOP = re.compile(r"\bwhile\(")  # an HLO while instruction in Compiled.as_text()
# jax.random's scopes in HLO metadata op_names: the threefry bit generator loops inside them
_PRNG_SCOPE = re.compile(r"threefry|random_bits|jit\(_uniform\)|jit\(_bernoulli\)")
CONV_WORKLOADS = ("lenet", "alexnet")


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
    """The convolutions take NHWC arrays (``CONV_DIMS``; XLA may choose another physical layout on a GPU),
    and the LSTM is a ``lax.scan`` loop: unfused (see BuiltCase.traits)."""
    if workload in CONV_WORKLOADS:
        return {"layout": CONV_DIMS[0]}
    if workload == "lstm":
        return {"recurrence": "unfused"}
    return {}
