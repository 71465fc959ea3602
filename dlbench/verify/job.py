"""The verify worker: the job the process kit (:mod:`dlbench.process`) runs to evaluate one framework.

One worker per framework, because frameworks in one process interfere (TensorFlow imports JAX, thread pools
are fixed per process). It runs pinned to the cores of ``--threads`` with the thread variables set, exactly as
a benchmark worker of ``run`` does (the kit's boot pins it before this module is imported). The request names
the framework by its registry name, so only an installed entry point is ever imported. Each result is sent to
the parent as soon as it exists (:mod:`dlbench.verify.transfer`), so a later crash loses nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

from dlbench.cases.spec import NATIVE_CONV
from dlbench.formatting import one_line
from dlbench.process.messages import Channel
from dlbench.verify.biases import DEFAULT_BIASES
from dlbench.verify.collect import ERROR, ImplResult, Target, evaluate_adapter, target_convs
from dlbench.verify.transfer import write_result


@dataclass(frozen=True)
class WorkerRequest:
    framework: str
    variants: tuple[str, ...]
    targets: tuple[Target, ...]
    batch_size: int
    seed: int
    device: str
    threads: int
    out_dir: str  # where the worker writes the arrays of its results (a directory the parent owns)
    biases: str = DEFAULT_BIASES  # which verification weights to build (see dlbench.verify.biases)
    precision: str = "float32"  # see dlbench.cases.precision
    convs: tuple[str, ...] = (NATIVE_CONV,)  # convolution algorithms (dlbench.cases.spec.CONV_ALGORITHMS)

    def to_wire(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(vars(self))
        data["targets"] = [[t.workload, t.phase] for t in self.targets]
        data["variants"] = list(self.variants)
        data["convs"] = list(self.convs)
        return data

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Self:
        values = dict(data)
        values["targets"] = tuple(Target(w, p) for w, p in values["targets"])
        values["variants"] = tuple(values["variants"])
        values["convs"] = tuple(values.get("convs", (NATIVE_CONV,)))
        return cls(**values)


def child_main(data: dict[str, Any], channel: Channel) -> None:
    """Entry point in the worker process (called by the kit's boot, already pinned)."""
    request = WorkerRequest.from_wire(data)
    out = Path(request.out_dir)
    counter = iter(range(10**9))
    affinity = tuple(sorted(os.sched_getaffinity(0)))  # reported with every result: proof of the pinning

    def save(result: ImplResult) -> None:
        channel.send(write_result(out, next(counter), replace(result, affinity=affinity)))

    from dlbench.frameworks.registry import get_adapter

    try:
        adapter = get_adapter(request.framework)
    except Exception as exc:  # noqa: BLE001 - the parent reports it as the framework's error line
        for variant in request.variants:
            for target in request.targets:
                for conv in target_convs(target, request.convs):
                    message = f"cannot load adapter: {one_line(exc)}"
                    save(ImplResult(request.framework, variant, target, ERROR, message, biases=request.biases,
                                    conv=conv))
        return
    evaluate_adapter(
        adapter,
        request.targets,
        request.variants,
        request.batch_size,
        request.seed,
        request.device,
        request.threads,
        on_result=save,
        biases=request.biases,
        precision=request.precision,
        convs=request.convs,
    )
