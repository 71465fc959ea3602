"""What one measured case produced: raw samples first, everything else derived from them.

A :class:`CaseResult` is what a worker sends back and what the store keeps. Summaries are recomputed from
``samples_ms`` whenever needed, so a stored run can always be re-analysed with better statistics.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from dlbench.cases.spec import Case
from dlbench.formatting import one_line
from dlbench.statistics.samples import Summary, summarize

# Status values. Anything other than "ok" is the reason the case has no timing.
OK = "ok"
FAILED = "failed"  # an exception while building or running the case
CRASHED = "crashed"  # the worker process died (segfault, abort, killed)
TIMEOUT = "timeout"
OOM = "oom"
UNAVAILABLE = "unavailable"  # the framework cannot run this case here (not installed, no GPU, variant)
INTERRUPTED = "interrupted"  # the run was stopped (Ctrl-C) before this case finished
STATUSES = (OK, FAILED, CRASHED, TIMEOUT, OOM, UNAVAILABLE, INTERRUPTED)
SYNC_SHARE_LIMIT = 0.05  # a case whose idle sync costs more than this share of its median is flagged
# The memory readings that comparisons and exports name, as keys of :meth:`Memory.readings`.
MEMORY_METRICS = ("peak_rss", "rss_rise", "framework_peak", "device_peak")
Status = Annotated[str, msgspec.Meta(pattern=f"^({'|'.join(STATUSES)})$")]

# What a stored number may be. A time is positive and finite (a zero or negative sample would make every
# derived rate infinite); counts and byte sizes are non-negative. Bounds are generous on purpose: they
# only turn damage (NaN, infinity, a string, a sign flip) into a clear error when a record is read.
SampleMs = Annotated[float, msgspec.Meta(gt=0, le=1e12)]
OptionalMs = Annotated[float, msgspec.Meta(ge=0, le=1e12)] | None
Count = Annotated[int, msgspec.Meta(ge=0)]
Bytes = Annotated[int, msgspec.Meta(ge=0)] | None
Ratio = Annotated[float, msgspec.Meta(ge=0, le=1e6)] | None


class Memory(msgspec.Struct, frozen=True):
    """Memory readings of one case, in bytes.

    ``peak_rss``: the worker's peak resident set during the case (VmHWM after a reset);
    ``baseline_rss``: resident set before the model was built, so ``rise`` is what the case added;
    ``framework_peak``: the framework's own counter on a CPU (TF allocator peak, JAX compiled memory analysis);
    ``device_peak``: the GPU allocator's steady-state peak: one iteration after the samples, after a reset;
    ``device_peak_measure``: the GPU allocator's peak over the whole measurement, first call (autotuning,
    compilation) included; ``device_in_use_before``: the GPU allocator's bytes in use before the build
    (docs/measurement.md, "Memory", says which counter each is in each framework).
    """

    peak_rss: Bytes = None
    baseline_rss: Bytes = None
    framework_peak: Bytes = None
    device_peak: Bytes = None
    device_peak_measure: Bytes = None
    device_in_use_before: Bytes = None

    @property
    def rise(self) -> int | None:
        if self.peak_rss is None or self.baseline_rss is None:
            return None
        return max(0, self.peak_rss - self.baseline_rss)

    def readings(self) -> dict[str, int | None]:
        """The readings by metric name (:data:`MEMORY_METRICS`); None where not measured."""
        return {"peak_rss": self.peak_rss, "rss_rise": self.rise, "framework_peak": self.framework_peak,
                "device_peak": self.device_peak}


class Round(msgspec.Struct, frozen=True):
    """One worker process's share of a case measured in rounds (``dlbench run --repeat R``).

    Its samples are the next ``n`` of the result's ``samples_ms``, which keeps every sample in round order.
    """

    n: Count
    started_at: str = ""
    cpu_per_wall: Ratio = None
    duration_s: Annotated[float, msgspec.Meta(ge=0, le=1e9)] | None = None
    memory: Memory | None = None  # this round's readings (runs before the field existed: only the first's)


class CaseResult(msgspec.Struct, frozen=True):
    """The outcome of one case. ``samples_ms`` are per-iteration times of whole timed blocks."""

    case: Case
    status: Status
    error: str = ""
    samples_ms: tuple[SampleMs, ...] = ()
    iterations_per_sample: Count = 0
    first_call_ms: OptionalMs = None
    warmup_iterations: Count = 0
    params: Bytes = None
    macs: Bytes = None
    framework_flops: Annotated[float, msgspec.Meta(ge=0, le=1e30)] | None = None
    memory: Memory = msgspec.field(default_factory=Memory)
    threads_effective: Annotated[int, msgspec.Meta(ge=0)] | None = None
    affinity: tuple[Count, ...] = ()
    cpu_per_wall: Ratio = None  # process CPU time / wall time while sampling: ~threads if busy
    dtypes: dict[str, str] = {}  # what the built case computed with (precision check)
    started_at: str = ""
    duration_s: Annotated[float, msgspec.Meta(ge=0, le=1e9)] | None = None
    host: str = ""  # the machine that ran the case (hostname)
    node_id: str = ""  # on a Ray cluster: the node that ran it (several nodes may share one hostname)
    retries: Count = 0  # times the case was placed again because its node died while running it
    rounds: tuple[Round, ...] = ()  # empty: one round, all of samples_ms
    environment: str = ""  # the --python environment (A/B runs); "" for the interpreter running dlbench
    gpu_telemetry: dict[str, Any] | None = None  # GPU cases: clocks, temperature, power, throttling while timed
    traits: dict[str, str] = {}  # layout, fused recurrence (BuiltCase.traits)
    sync_ms: OptionalMs = None  # one sync on the idle device, measured after the samples
    device_samples_ms: tuple[SampleMs, ...] = ()  # per-iteration device-event times (PyTorch on a GPU)
    gpu_selector: str = ""  # GPU cases: the one GPU the worker saw (CUDA_VISIBLE_DEVICES: index or UUID)

    @property
    def sync_bound(self) -> bool:
        """Whether one sync costs more than :data:`SYNC_SHARE_LIMIT` of the median: part of the case's time
        is then the framework's synchronisation, which biases a comparison across frameworks."""
        summary = self.summary() if self.sync_ms is not None else None
        return summary is not None and self.sync_ms is not None and self.sync_ms > SYNC_SHARE_LIMIT * summary.median

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def round_count(self) -> int:
        return len(self.rounds) if self.rounds else (1 if self.samples_ms else 0)

    def round_samples(self) -> list[tuple[float, ...]]:
        """The samples of each round, in the order the rounds were measured."""
        if not self.rounds:
            return [self.samples_ms] if self.samples_ms else []
        found, start = [], 0
        for entry in self.rounds:
            found.append(self.samples_ms[start:start + entry.n])
            start += entry.n
        return found

    def round_memory(self) -> list[Memory]:
        """The memory readings of each round (one entry, the result's own, when the rounds did not record
        theirs or there is one round): memory varies between worker processes as time does."""
        if len(self.rounds) >= 2 and all(r.memory is not None for r in self.rounds):
            return [r.memory for r in self.rounds if r.memory is not None]
        return [self.memory]

    def summary(self) -> Summary | None:
        """Headline statistics; with two rounds or more they rest on the round medians."""
        if not self.samples_ms:
            return None
        if len(self.rounds) < 2:
            return summarize(self.samples_ms)
        from dlbench.statistics.rounds import summarize_rounds  # scipy: only where rounds exist, not in workers

        return summarize_rounds(self.round_samples())

    def add_round(self, other: CaseResult) -> CaseResult:
        """This result with ``other``'s samples appended as one more round (both must be ok)."""
        own = self.rounds or (Round(len(self.samples_ms), self.started_at, self.cpu_per_wall,
                                    self.duration_s, self.memory),)
        new = Round(len(other.samples_ms), other.started_at, other.cpu_per_wall, other.duration_s, other.memory)
        return msgspec.structs.replace(self, samples_ms=self.samples_ms + other.samples_ms, rounds=(*own, new))

    def with_status(self, status: str, error: str) -> CaseResult:
        return msgspec.structs.replace(self, status=status, error=error)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        """A result from its stored form; raises msgspec.ValidationError naming the bad field."""
        return msgspec.convert(data, cls)


def failed_result(case: Case, status: str, error: str, **extra: Any) -> CaseResult:
    """A result row for a case that produced no timing; the error text is kept to one line."""
    return CaseResult(case=case, status=status, error=one_line(error), **extra)

