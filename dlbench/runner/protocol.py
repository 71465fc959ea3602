"""The messages between the parent and a worker process: one JSON object per line on a private pipe.

The pipe is a dedicated file descriptor, not stdout, because frameworks print banners and warnings on
their own; the worker's stdout and stderr are captured separately and only shown in error texts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dlbench.measure.timing import MeasureConfig
from dlbench.spec import Case

READY = "ready"  # the framework imported and configured: {"runtime": {...}}
INIT_FAILED = "init_failed"  # {"error": "...", "status": "failed" | "unavailable"}
START = "start"  # a case begins: {"key": ...}
RESULT = "result"  # a case finished (any status): {"result": CaseResult.to_dict()}


@dataclass(frozen=True)
class WorkerJob:
    """What one worker process is asked to do."""

    framework: str
    device: str
    threads: int
    cores: tuple[int, ...]
    cases: tuple[Case, ...]
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    seed: int = 0

    @property
    def label(self) -> str:
        """``torch/cpu/t2``: names the worker in the environment record."""
        return f"{self.framework}/{self.device}/t{self.threads}"

    def to_json(self) -> str:
        return json.dumps({
            "framework": self.framework, "device": self.device, "threads": self.threads,
            "cores": list(self.cores), "cases": [c.to_dict() for c in self.cases],
            "measure": self.measure.to_dict(), "seed": self.seed,
        })

    @classmethod
    def from_json(cls, text: str) -> WorkerJob:
        data = json.loads(text)
        return cls(
            framework=data["framework"], device=data["device"], threads=int(data["threads"]),
            cores=tuple(data["cores"]), cases=tuple(Case.from_dict(c) for c in data["cases"]),
            measure=MeasureConfig(**data["measure"]), seed=int(data["seed"]),
        )


def encode(event: str, **payload: Any) -> bytes:
    return (json.dumps({"event": event, **payload}, default=str) + "\n").encode()


def decode(line: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and "event" in data else None
