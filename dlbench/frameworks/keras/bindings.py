"""The canonical weights in a Keras model: which Keras variable holds which canonical parameter.

Keras 3 stores convolution kernels HWIO and dense kernels ``[in, out]`` on every backend, the canonical layouts
themselves, and with ``channels_last`` (Keras's default) a ``Flatten`` after a convolution flattens in H, W, C
order, the canonical flatten order; so a binding is a name and nothing is converted. A variable is bound by its
path (``conv1/kernel`` holds ``conv1.kernel``: name the layers after the canonical ones, as
``examples/keras_lenet.py`` does); a model whose paths do not all match is bound by the order of its trainable
weights, when their shapes are the canonical parameters' shapes in canonical order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dlbench.workloads import Workload

BY_NAME, BY_ORDER = "by name", "by order"


def canonical_name(path: str) -> str:
    """``conv1/kernel`` (or ``model/conv1/kernel``) as ``conv1.kernel``."""
    return ".".join(path.split("/")[-2:])


def bind(model: Any, workload: Workload, phase: str) -> tuple[dict[str, Any], str]:
    """Canonical name -> the Keras variable that holds it, for every parameter the phase reads, and how they
    were matched (:data:`BY_NAME` or :data:`BY_ORDER`). ValueError, one line, when neither matches."""
    wanted = workload.phase(phase).reads
    specs = [workload.param(name) for name in wanted]
    by_path = {canonical_name(str(v.path)): v for v in model.weights}
    if all(name in by_path and tuple(by_path[name].shape) == workload.param(name).shape for name in wanted):
        return {name: by_path[name] for name in wanted}, BY_NAME
    trainable = list(model.trainable_weights)
    if [tuple(v.shape) for v in trainable] == [s.shape for s in specs]:
        return {s.name: v for s, v in zip(specs, trainable, strict=True)}, BY_ORDER
    found = ", ".join(f"{v.path} {tuple(v.shape)}" for v in model.weights) or "none"
    raise ValueError(f"the Keras model's weights ({found}) are not the parameters of {workload.name} "
                     f"({', '.join(f'{s.name} {s.shape}' for s in specs)}): name its layers after them "
                     f"(a layer conv1 holds conv1.kernel and conv1.bias) or keep their order and shapes")


def load(bound: Mapping[str, Any], weights: Mapping[str, np.ndarray]) -> None:
    """Assign the canonical weights (float32) to the bound variables."""
    for name, variable in bound.items():
        variable.assign(np.asarray(weights[name], dtype=np.float32))


def trainable_count(model: Any) -> int:
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def names_of(bound: Mapping[str, Any], variables: Sequence[Any]) -> list[str]:
    """The canonical name of each of ``variables`` (every one must be bound)."""
    by_id = {id(v): name for name, v in bound.items()}
    return [by_id[id(v)] for v in variables]
