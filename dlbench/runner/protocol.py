"""The benchmark worker's job and messages, on the process kit's typed channel (:mod:`dlbench.process`).

The parent sends a :class:`WorkerJob` when it starts the worker; the worker answers with :class:`Ready` (or
:class:`InitFailed`), then :class:`Started` and :class:`Finished` for each case, in order; a worker that
takes turns with others also sends the process kit's :class:`~dlbench.process.turns.Yield` between samples,
and a worker started ahead of its turn (:mod:`dlbench.process.gate`) sends :class:`Waiting` once warmed up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from dlbench.cases.spec import Case, WorkerKey
from dlbench.measure.timing import MeasureConfig
from dlbench.process.messages import Codec, Message
from dlbench.process.placement import Placement
from dlbench.process.turns import Yield
from dlbench.record.results import CaseResult


@dataclass(frozen=True)
class WorkerJob:
    """What one worker process is asked to do: the cases of one :class:`WorkerKey`, on these cores."""

    key: WorkerKey
    cores: tuple[int, ...]
    cases: tuple[Case, ...]
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    seed: int = 0
    gpu: str = ""  # GPU workers: the one GPU they see (CUDA_VISIBLE_DEVICES); "" = the default GPU

    @property
    def framework(self) -> str:
        return self.key.framework

    @property
    def device(self) -> str:
        return self.key.device

    @property
    def threads(self) -> int:
        return self.key.threads

    @property
    def placement(self) -> Placement:
        return Placement(self.key.threads, self.cores, self.key.device, self.gpu if self.key.device == "gpu" else "")

    def to_wire(self) -> dict[str, Any]:
        return {"key": self.key.to_dict(), "cores": list(self.cores), "cases": [c.to_dict() for c in self.cases],
                "measure": self.measure.to_dict(), "seed": self.seed, "gpu": self.gpu}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Self:
        return cls(key=WorkerKey(**data["key"]), cores=tuple(data["cores"]),
                   cases=tuple(Case.from_dict(c) for c in data["cases"]),
                   measure=MeasureConfig(**data["measure"]), seed=int(data["seed"]), gpu=str(data.get("gpu", "")))


@dataclass(frozen=True)
class Ready(Message):
    """The framework imported and configured; what it reports about itself (version, threads, ...)."""

    kind = "ready"
    runtime: dict[str, Any]


@dataclass(frozen=True)
class InitFailed(Message):
    """The framework could not be initialised: every case of the job gets ``status`` and ``error``."""

    kind = "init_failed"
    error: str
    status: str


@dataclass(frozen=True)
class Waiting(Message):
    """A worker started ahead of its turn is imported and warmed up, and waits at its gate."""

    kind = "waiting"


@dataclass(frozen=True)
class Started(Message):
    """A case begins (its timeout starts now)."""

    kind = "started"
    key: str


@dataclass(frozen=True)
class Finished(Message):
    """A case ended, with any status."""

    kind = "finished"
    result: CaseResult

    def to_wire(self) -> dict[str, Any]:
        return {"result": self.result.to_dict()}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Self:
        return cls(CaseResult.from_dict(data["result"]))


CODEC = Codec(Ready, InitFailed, Waiting, Started, Finished, Yield)
