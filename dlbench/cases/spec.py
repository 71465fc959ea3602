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

from dlbench.errors import SuiteError

Pass = Literal["forward", "gradient"]
DEVICES: tuple[str, ...] = ("cpu", "gpu")
PRECISIONS: tuple[str, ...] = ("float32", "tf32", "bf16", "fp16")  # see dlbench.cases.precision
# How a case's convolutions are computed (docs/convolution.md): the framework's own op, or one of the three
# families of the literature written with the framework's own tensor ops.
NATIVE_CONV = "native"
CONV_ALGORITHMS: tuple[str, ...] = (NATIVE_CONV, "im2col", "fft", "direct")

# Upper bounds of the numeric axes. They are far above anything meaningful on today's hardware, and they
# stop absurd values (a batch of 1e20, a million threads) at the command line instead of deep inside NumPy.
MAX_THREADS = 4096
MAX_BATCH_SIZE = 1_000_000
MAX_SEED = 2**32 - 1  # NumPy's seed range: the seed is mixed into 32-bit generator seeds



def check_conv(conv: str) -> None:
    """The one check of a convolution algorithm's name (suites, ``--conv``, ``build``)."""
    if conv not in CONV_ALGORITHMS:
        raise SuiteError(f"unknown convolution algorithm {conv!r}; algorithms: {', '.join(CONV_ALGORITHMS)}")


def check_convs(names: tuple[str, ...], where: str) -> tuple[str, ...]:
    """Algorithm names from a suite or the command line, ``all`` expanded, each checked, in order, once."""
    expanded = CONV_ALGORITHMS if "all" in names else names
    for name in expanded:
        try:
            check_conv(name)
        except SuiteError as exc:
            raise SuiteError(f"{where}: {exc}") from None
    return tuple(dict.fromkeys(expanded))


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
    conv: Name = NATIVE_CONV  # the convolution algorithm (CONV_ALGORITHMS); "native" for networks without one

    @property
    def key(self) -> str:
        """Stable identifier, independent of run and machine: ``lenet/-/forward/torch/eager/cpu/t1/b64/float32``.

        A GPU case's key has no thread count (``lenet/-/forward/torch/eager/gpu/b64/float32``): its host
        threads only feed the GPU and are by default all the host's cores, so with them in the key the same
        GPU case would never match across hosts with different core counts. A convolution algorithm other
        than ``native`` ends the key (``.../float32/conv-fft``), so that the keys of every run recorded
        before the algorithm axis existed still name the same measurements."""
        threads = [] if self.device == "gpu" else [f"t{self.threads}"]
        conv = [] if self.conv == NATIVE_CONV else [f"conv-{self.conv}"]
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
                *conv,
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
    """What the cases sharing one isolated worker process have in common: framework, device, thread count,
    and the variant whose environment must be set before the framework is imported (``process``; "" for
    the variants that share one worker, see ``Adapter.variant_env``).

    It names the worker in the run record (:attr:`label`, ``torch/cpu/t2``, ``tensorflow/cpu/t1/eigen``) and
    keeps its parts typed."""

    framework: str
    device: str
    threads: int
    process: str = ""

    @classmethod
    def of(cls, case: Case, own_process: bool = False) -> WorkerKey:
        """The worker of ``case``; ``own_process`` when its variant needs an environment of its own."""
        return cls(case.framework, case.device, case.threads, case.variant if own_process else "")

    @property
    def label(self) -> str:
        base = f"{self.framework}/{self.device}/t{self.threads}"
        return f"{base}/{self.process}" if self.process else base

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
