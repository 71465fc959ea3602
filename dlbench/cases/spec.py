"""The value types that name what is measured.

A :class:`Case` is one cell of the comparison: its fields are exactly the axes of the tables
(workload, phase, pass, framework, variant, device, threads, batch size, precision). It is frozen
and hashable so that it can key dictionaries, and its :attr:`Case.key` string identifies the same
measurement across runs (used by resume and by ``compare``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

import msgspec

Pass = Literal["forward", "gradient"]
DEVICES: tuple[str, ...] = ("cpu", "gpu")
PRECISIONS: tuple[str, ...] = ("float32", "tf32", "bf16", "fp16")  # see dlbench.cases.precision

# Upper bounds of the numeric axes. They are far above anything meaningful on today's hardware, and they
# stop absurd values (a batch of 1e20, a million threads) at the command line instead of deep inside NumPy.
MAX_THREADS = 4096
MAX_BATCH_SIZE = 1_000_000
MAX_SEED = 2**32 - 1  # NumPy's seed range: the seed is mixed into 32-bit generator seeds

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Threads = Annotated[int, msgspec.Meta(ge=1, le=MAX_THREADS)]
BatchSize = Annotated[int, msgspec.Meta(ge=1, le=MAX_BATCH_SIZE)]
Seed = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEED)]


class Case(msgspec.Struct, frozen=True, order=True):
    """One measurement: a workload phase, a pass, on one framework variant and device setting.

    A msgspec struct, so that a stored case is validated field by field when a run record is read."""

    workload: Name
    phase: Annotated[str, msgspec.Meta(max_length=200)]  # "" unless the workload has phases (the autoencoder)
    pass_: Name = msgspec.field(name="pass")  # "forward" | "gradient"
    framework: Name
    variant: Name
    device: Name  # "cpu" | "gpu"
    threads: Threads
    batch_size: BatchSize
    precision: Name = "float32"

    @property
    def key(self) -> str:
        """Stable identifier, independent of run and machine: ``lenet/-/forward/torch/eager/cpu/t1/b64/float32``.

        A GPU case's key has no thread count (``lenet/-/forward/torch/eager/gpu/b64/float32``): its host
        threads only feed the GPU and are by default all the host's cores, so with them in the key the same
        GPU case would never match across hosts with different core counts."""
        threads = [] if self.device == "gpu" else [f"t{self.threads}"]
        return "/".join(
            [
                self.workload,
                self.phase or "-",
                self.pass_,
                self.framework,
                self.variant,
                self.device,
                *threads,
                f"b{self.batch_size}",
                self.precision,
            ]
        )

    @property
    def workload_label(self) -> str:
        """``autoencoder/pretrain1`` or ``lenet``: what a table row is called."""
        return f"{self.workload}/{self.phase}" if self.phase else self.workload

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        """A case from its stored form (``pass``; ``pass_`` accepted too); raises msgspec.ValidationError."""
        values = dict(data)
        if "pass_" in values and "pass" not in values:
            values["pass"] = values.pop("pass_")
        return msgspec.convert(values, cls)


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
