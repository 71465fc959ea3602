"""Move :class:`ImplResult` values from the verify worker to the parent: a typed message and an array file.

Arrays travel as ``.npz`` in a directory the parent owns (read back with ``allow_pickle=False``: nothing
executable ever crosses), everything else in a :class:`Delivered` message on the process kit's channel. The
worker sends the message only after the array file is complete, so the parent never reads half a result, even
when the worker dies half-way through writing the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlbench.frameworks.base import Evaluation
from dlbench.process.messages import Codec, Message
from dlbench.verify.collect import ImplResult, Target


@dataclass(frozen=True)
class Delivered(Message):
    """One result of the verify worker; ``arrays`` names its ``.npz`` file (None when it has no evaluation)."""

    kind = "verify_result"
    framework: str
    variant: str
    workload: str
    phase: str
    status: str
    error: str
    trainable_params: int | None
    framework_flops: dict[str, float | None]
    version: str
    biases: str
    affinity: list[int]
    gradients: list[str] | None  # gradient names, in the order of the grad_<i> arrays
    arrays: str | None
    conv: str = "native"  # the convolution algorithm it was evaluated with
    traits: dict[str, str] = field(default_factory=dict)  # BuiltCase.traits(): what really ran


CODEC = Codec(Delivered)


def write_result(directory: Path, index: int, result: ImplResult) -> Delivered:
    """Write the arrays of ``result`` into ``directory`` and return the message that describes it."""
    gradients, arrays = None, None
    if result.evaluation is not None:
        evaluation = result.evaluation
        gradients = list(evaluation.gradients)
        data: dict[str, Any] = {
            "output": np.asarray(evaluation.output),
            "loss": np.asarray(evaluation.loss, dtype=np.float64),
        }
        data.update({f"grad_{i}": np.asarray(evaluation.gradients[n]) for i, n in enumerate(gradients)})
        arrays = f"result-{index}.npz"
        np.savez(directory / arrays, **data)
    return Delivered(
        framework=result.framework, variant=result.variant, workload=result.target.workload,
        phase=result.target.phase, status=result.status, error=result.error,
        trainable_params=result.trainable_params, framework_flops=dict(result.framework_flops),
        version=result.version, biases=result.biases, affinity=list(result.affinity), gradients=gradients,
        arrays=arrays, conv=result.conv, traits=dict(result.traits),
    )


def read_result(directory: Path, message: Delivered) -> ImplResult:
    """The :class:`ImplResult` that ``message`` describes, its arrays read from ``directory``."""
    evaluation = None
    if message.gradients is not None and message.arrays is not None:
        with np.load(directory / Path(message.arrays).name, allow_pickle=False) as data:
            evaluation = Evaluation(
                output=data["output"],
                loss=float(data["loss"]),
                gradients={name: data[f"grad_{i}"] for i, name in enumerate(message.gradients)},
            )
    return ImplResult(
        framework=message.framework,
        variant=message.variant,
        target=Target(message.workload, message.phase),
        status=message.status,
        error=message.error,
        evaluation=evaluation,
        trainable_params=message.trainable_params,
        framework_flops=dict(message.framework_flops),
        version=message.version,
        biases=message.biases,
        affinity=tuple(message.affinity),
        conv=message.conv,
        traits=dict(message.traits),
    )
