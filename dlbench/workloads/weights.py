"""Seeded canonical initial weights, in the framework-neutral layout of ``docs/workloads.md``.

Generated once with NumPy and converted by each adapter, so that ``dlbench verify`` can feed the same
weights to every framework and compare outputs and gradients, and so that timed runs start from the same
point everywhere. Glorot-uniform kernels and embedding tables (fan-in / fan-out include the receptive
field for convolutions), zero biases, layer-norm gamma one and beta zero.
"""

from __future__ import annotations

from math import prod

import numpy as np

from dlbench.workloads.data import derive_seed
from dlbench.workloads.definitions import ParamSpec
from dlbench.workloads.registry import get_workload

# Uniform initialisations by name, for tensors that are neither kernels nor zero or one: ``small`` (a batch-norm
# running mean near zero) and ``positive`` (a running variance near one). Fan-free, so 1-D tensors take them.
UNIFORM_INITS: dict[str, tuple[float, float]] = {"small": (-0.1, 0.1), "positive": (0.5, 1.5)}


def glorot_limit(shape: tuple[int, ...]) -> float:
    """Glorot-uniform bound sqrt(6 / (fan_in + fan_out)); for HWIO kernels the receptive field counts."""
    receptive = prod(shape[:-2]) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    return float(np.sqrt(6.0 / (fan_in + fan_out)))


def init_param(spec: ParamSpec, rng: np.random.Generator) -> np.ndarray:
    if spec.init == "zeros":
        return np.zeros(spec.shape, dtype=np.float32)
    if spec.init == "ones":
        return np.ones(spec.shape, dtype=np.float32)
    if spec.init in UNIFORM_INITS:  # e.g. batch-norm running statistics, which are not all zero and one
        low, high = UNIFORM_INITS[spec.init]
        return (low + (high - low) * rng.random(spec.shape, dtype=np.float32)).astype(np.float32)
    limit = glorot_limit(spec.shape)
    # float32 draws directly: AlexNet's 62M weights would take a 500 MB float64 detour otherwise
    values = rng.random(spec.shape, dtype=np.float32)
    values *= np.float32(2 * limit)
    values -= np.float32(limit)
    return values


def initial_weights(workload: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Every parameter of ``workload`` (all phases) by canonical name. Each tensor has its own stream,
    so adding a parameter never changes the others."""
    spec = get_workload(workload)
    return {
        p.name: init_param(p, np.random.default_rng(derive_seed("weights", workload, p.name, seed)))
        for p in spec.params
    }
