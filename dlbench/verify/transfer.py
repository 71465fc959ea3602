"""Move :class:`ImplResult` values between the verify worker and the parent through files.

Arrays travel as ``.npz`` (read back with ``allow_pickle=False``: nothing executable ever crosses), the rest
as JSON. The JSON file is written last and atomically, so the parent only ever sees complete results, even
when the worker dies half-way through writing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dlbench.frameworks.base import Evaluation
from dlbench.store import atomic_write
from dlbench.verify.collect import ImplResult, Target

RESULT_GLOB = "result-*.json"


def write_result(directory: Path, index: int, result: ImplResult) -> None:
    meta: dict[str, Any] = {
        "framework": result.framework,
        "variant": result.variant,
        "workload": result.target.workload,
        "phase": result.target.phase,
        "status": result.status,
        "error": result.error,
        "trainable_params": result.trainable_params,
        "framework_flops": result.framework_flops,
        "version": result.version,
        "biases": result.biases,
        "gradients": None,
    }
    if result.evaluation is not None:
        evaluation = result.evaluation
        names = list(evaluation.gradients)
        arrays = {
            "output": np.asarray(evaluation.output),
            "loss": np.asarray(evaluation.loss, dtype=np.float64),
        }
        arrays.update({f"grad_{i}": np.asarray(evaluation.gradients[n]) for i, n in enumerate(names)})
        np.savez(directory / f"result-{index}.npz", **arrays)  # type: ignore[arg-type]
        meta["gradients"] = names
    atomic_write(directory / f"result-{index}.json", json.dumps(meta))  # the parent never reads half a file


def read_results(directory: Path) -> list[ImplResult]:
    """Every complete result in ``directory``, in the order the worker produced them."""
    paths = sorted(directory.glob(RESULT_GLOB), key=lambda p: int(p.stem.split("-")[1]))
    return [_read_one(path) for path in paths]


def _read_one(path: Path) -> ImplResult:
    meta = json.loads(path.read_text())
    evaluation = None
    if meta["gradients"] is not None:
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
            evaluation = Evaluation(
                output=data["output"],
                loss=float(data["loss"]),
                gradients={name: data[f"grad_{i}"] for i, name in enumerate(meta["gradients"])},
            )
    return ImplResult(
        framework=meta["framework"],
        variant=meta["variant"],
        target=Target(meta["workload"], meta["phase"]),
        status=meta["status"],
        error=meta["error"],
        evaluation=evaluation,
        trainable_params=meta["trainable_params"],
        framework_flops=dict(meta["framework_flops"]),
        version=meta["version"],
        biases=meta["biases"],
    )
