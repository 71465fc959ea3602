"""Canonical <-> framework weight layouts: the shape of a binding table.

Any adapter whose layers store their parameters differently from the canonical layout of
``docs/workloads.md`` (HWIO convolution kernels, ``[in, out]`` dense kernels, H, W, C flatten order, LSTM
gates i, f, g, o) describes each canonical parameter by a :class:`Binding`: where the parameter lives in the
framework's model and the two conversions between the layouts. The converters are pure NumPy, so that they
are easy to reason about and test, and this module imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Convert = Callable[[np.ndarray], np.ndarray]


def identity(a: np.ndarray) -> np.ndarray:
    return a


def transpose(a: np.ndarray) -> np.ndarray:
    """Dense kernel ``[in, out]`` <-> ``nn.Linear`` weight ``[out, in]`` (its own inverse); also the LSTM
    kernels ``[in, 4H]`` <-> ``weight_ih_l0`` ``[4H, in]`` (both use gate order i, f, g, o)."""
    return a.T


def hwio_to_oihw(a: np.ndarray) -> np.ndarray:
    return np.transpose(a, (3, 2, 0, 1))


def oihw_to_hwio(a: np.ndarray) -> np.ndarray:
    return np.transpose(a, (2, 3, 1, 0))


def chw_flatten_converters(h: int, w: int, c: int) -> tuple[Convert, Convert]:
    """Converters for the dense layer after a *channels-first* flatten.

    The canonical kernel's rows follow the H, W, C flatten order; ``Tensor.flatten`` of an NCHW map gives
    C, H, W. Permuting the rows once at build time keeps the runtime flatten a free view. ``to_framework``
    returns the weight as an ``[out, C, H, W]`` view (the loader copies it into the parameter viewed that
    way), which avoids a slow NumPy copy of fc6's 38 million floats.
    """

    def to_framework(kernel: np.ndarray) -> np.ndarray:
        return kernel.reshape(h, w, c, kernel.shape[1]).transpose(3, 2, 0, 1)

    def to_canonical(weight: np.ndarray) -> np.ndarray:
        out = weight.shape[0]
        return weight.T.reshape(c, h, w, out).transpose(1, 2, 0, 3).reshape(h * w * c, out)

    return to_framework, to_canonical


@dataclass(frozen=True)
class Binding:
    """One canonical parameter and where it lives in the framework's model, with the layout conversions.

    ``to_framework`` may return a (strided) view of any shape that the parameter can be viewed as; the
    loader lets the framework do the strided copy, which is much faster than ``np.ascontiguousarray``.
    """

    canonical: str  # e.g. "conv1.kernel"
    path: str  # parameter path inside the model, e.g. for PyTorch's ``nn.Module.get_parameter``
    to_framework: Convert = identity
    to_canonical: Convert = identity


def conv_bindings(name: str) -> tuple[Binding, ...]:
    return (
        Binding(f"{name}.kernel", f"{name}.weight", hwio_to_oihw, oihw_to_hwio),
        Binding(f"{name}.bias", f"{name}.bias"),
    )


def dense_bindings(name: str, path: str | None = None) -> tuple[Binding, ...]:
    path = path or name
    return (
        Binding(f"{name}.kernel", f"{path}.weight", transpose, transpose),
        Binding(f"{name}.bias", f"{path}.bias"),
    )


def flat_dense_bindings(name: str, hwc: tuple[int, int, int], flatten_hwc: bool) -> tuple[Binding, ...]:
    """The dense layer right after a flatten: rows permuted unless the model flattens in H, W, C order."""
    if flatten_hwc:
        return dense_bindings(name)
    to_framework, to_canonical = chw_flatten_converters(*hwc)
    return Binding(f"{name}.kernel", f"{name}.weight", to_framework, to_canonical), Binding(
        f"{name}.bias", f"{name}.bias"
    )
