"""The value types that name what is measured.

A :class:`Case` is one cell of the comparison: its fields are exactly the axes of the tables
(workload, phase, pass, framework, variant, device, threads, batch size, precision). It is frozen
and hashable so that it can key dictionaries, and its :attr:`Case.key` string identifies the same
measurement across runs (used by resume and by ``compare``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Pass = Literal["forward", "gradient"]
DEVICES: tuple[str, ...] = ("cpu", "gpu")
PRECISIONS: tuple[str, ...] = ("float32", "tf32", "bf16", "fp16")  # see dlbench.precision


@dataclass(frozen=True, order=True)
class Case:
    """One measurement: a workload phase, a pass, on one framework variant and device setting."""

    workload: str
    phase: str  # "" unless the workload has phases (the autoencoder)
    pass_: str  # "forward" | "gradient"
    framework: str
    variant: str
    device: str  # "cpu" | "gpu"
    threads: int
    batch_size: int
    precision: str = "float32"

    @property
    def key(self) -> str:
        """Stable identifier, independent of run and machine: ``lenet/-/forward/torch/eager/cpu/t1/b64/float32``."""
        return "/".join(
            [
                self.workload,
                self.phase or "-",
                self.pass_,
                self.framework,
                self.variant,
                self.device,
                f"t{self.threads}",
                f"b{self.batch_size}",
                self.precision,
            ]
        )

    @property
    def workload_label(self) -> str:
        """``autoencoder/pretrain1`` or ``lenet``: what a table row is called."""
        return f"{self.workload}/{self.phase}" if self.phase else self.workload

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pass"] = data.pop("pass_")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        values = dict(data)
        if "pass" in values:
            values["pass_"] = values.pop("pass")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True, order=True)
class WorkerKey:
    """What the cases sharing one isolated worker process have in common: framework, device, thread count.

    It names the worker in the run record (:attr:`label`, ``torch/cpu/t2``) and keeps its parts typed."""

    framework: str
    device: str
    threads: int

    @classmethod
    def of(cls, case: Case) -> WorkerKey:
        return cls(case.framework, case.device, case.threads)

    @property
    def label(self) -> str:
        return f"{self.framework}/{self.device}/t{self.threads}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
