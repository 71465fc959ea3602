"""The typed content of ``run.json``: what a run was asked to do (:class:`RunConfig`), where it ran
(:class:`Environment`) and what it measured (the :class:`~dlbench.record.results.CaseResult` list).

Every field has a type and, for numbers, a range, so that reading a record *is* validating it: a damaged
file is refused with one error naming the field (``results[3].samples_ms[0]: expected `float` > 0``) instead
of failing later, somewhere in a report. The same types generate the published JSON Schema
(``docs/run-schema.json``). Version 1 files (dlbench 0.1) are read by :mod:`dlbench.record.schema_v1`.

Version 3 is version 2 plus ``journal_seq``: a version-3 ``run.json`` is a snapshot that a journal
(``run.jsonl``, :mod:`dlbench.record.journal`) may continue. The version went up so that a dlbench that
reads only version 2 refuses such a file instead of silently reading a running or killed run without the
cases in its journal.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from dlbench.cases.spec import BatchSize, Case, Name, Seed, Threads
from dlbench.measure.timing import MeasureConfig
from dlbench.record.results import CaseResult

SCHEMA_VERSION = 3
EXECUTORS = ("local", "ray")
MAX_MEMORY_LIMIT_MB = 2.0**30  # a petabyte: anything above is a typo, not a limit
MemoryLimitMb = Annotated[float, msgspec.Meta(ge=1, le=MAX_MEMORY_LIMIT_MB)]
RunStatus = Annotated[str, msgspec.Meta(pattern="^(running|complete|interrupted)$")]
Text = Annotated[str, msgspec.Meta(max_length=100_000)]
ROUNDS, SAMPLES = "rounds", "samples"  # how the environments of an A/B run interleave (RunConfig.interleave)
INTERLEAVES = (SAMPLES, ROUNDS)
Interleave = Annotated[str, msgspec.Meta(pattern=f"^({'|'.join(INTERLEAVES)})$")]


class DeviceSettings(msgspec.Struct, frozen=True):
    """The thread counts and, per workload, the batch sizes that a suite plans on one device."""

    threads: tuple[Threads, ...]
    batch_sizes: dict[str, tuple[BatchSize, ...]]
    variants: dict[str, tuple[str, ...]] = {}  # framework -> variants on this device, replacing the suite's


class SuiteRecord(msgspec.Struct, frozen=True):
    """The suite a run was planned from, after command-line overrides. Its measurement settings and seed
    are not repeated here: they are the run's (:attr:`RunConfig.measure`, :attr:`RunConfig.seed`)."""

    name: Text
    description: Text = ""
    source: Text = ""
    workloads: tuple[str, ...] = ()
    passes: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()
    variants: dict[str, tuple[str, ...]] = {}
    precisions: tuple[str, ...] = ("float32",)
    convs: tuple[str, ...] = ("native",)  # convolution algorithms (dlbench.cases.spec.CONV_ALGORITHMS)
    devices: dict[str, DeviceSettings] = {}
    notes: tuple[Text, ...] = ()
    resources: dict[str, Annotated[float, msgspec.Meta(ge=0, le=1e12)]] = {}  # Ray resources a node needs
    gpu: str = ""  # the GPU of the GPU cases (index or UUID); "" = the default GPU


class ExecutorConfig(msgspec.Struct, frozen=True):
    """Where the cases run: ``local`` (this machine) or ``ray`` (the nodes of a Ray cluster, placed as
    ``placement`` says; ``node`` names the node of one run of an each-node fleet run)."""

    name: Annotated[str, msgspec.Meta(pattern=f"^({'|'.join(EXECUTORS)})$")] = "local"
    address: str = ""
    placement: str = ""
    resources: dict[str, Annotated[float, msgspec.Meta(ge=0, le=1e12)]] = {}
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    node: str = ""


class PythonEnvironment(msgspec.Struct, frozen=True):
    """One ``--python NAME=PATH`` interpreter of an A/B run: every case is measured in each of them."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]
    python: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class RunConfig(msgspec.Struct, frozen=True):
    """Everything that decides what a run measures, and how. A fresh run builds it from the suite and the
    command line; a resumed run reads it back from ``run.json``; the worker jobs are derived from it."""

    suite: SuiteRecord
    cases: tuple[Case, ...]
    measure: MeasureConfig
    seed: Seed = 0
    memory_limit_mb: MemoryLimitMb | None = None
    executor: ExecutorConfig = ExecutorConfig()
    default_variants: dict[str, str] = {}  # framework -> its default variant when the run was planned
    environments: tuple[PythonEnvironment, ...] = ()  # A/B runs (--python); () runs this interpreter
    control: bool = False  # measure the drift control at the start of every round (dlbench.runner.drift)
    command: tuple[str, ...] = ()  # the command line, for the record
    # A/B runs: "samples" = the environments' workers of a round run side by side and take turns on the
    # cores sample by sample (dlbench.process.turns); "rounds" = one after the other (and every run before
    # this field existed)
    interleave: Interleave = ROUNDS


class HostInfo(msgspec.Struct, frozen=True):
    """The machine, as the parent process saw it when the run started. Every field may be missing."""

    hostname: str = ""
    os: str = ""
    kernel: str = ""
    machine: str = ""
    python: str = ""
    cpu_model: str = ""
    cpu_flags: tuple[str, ...] = ()
    cpu_logical: Annotated[int, msgspec.Meta(ge=0)] | None = None
    cpu_physical: Annotated[int, msgspec.Meta(ge=0)] | None = None
    affinity: tuple[Annotated[int, msgspec.Meta(ge=0)], ...] = ()
    memory_gb: Annotated[float, msgspec.Meta(ge=0, le=1e9)] | None = None
    load_avg: tuple[Annotated[float, msgspec.Meta(ge=0, le=1e9)], ...] = ()


class GpuInfo(msgspec.Struct, frozen=True):
    """One GPU as NVML reports it (:func:`dlbench.machine.nvml.nvml_gpus`); a field NVML refused is missing and its
    reason is under ``errors``."""

    index: Annotated[int, msgspec.Meta(ge=0)] | None = None
    name: str = ""
    uuid: str = ""
    pci_bus_id: str = ""
    driver: str = ""
    cuda_driver: str = ""
    memory_mb: Annotated[int, msgspec.Meta(ge=0)] | None = None
    compute_capability: str = ""
    mig_mode: str = ""
    persistence_mode: str = ""
    power_limit_w: Annotated[float, msgspec.Meta(ge=0, le=1e6)] | None = None
    clocks: dict[str, Annotated[int, msgspec.Meta(ge=0)]] = {}  # application and maximum clocks, MHz
    errors: dict[str, str] = {}  # field -> why NVML did not answer it


class GitInfo(msgspec.Struct, frozen=True):
    """The commit of the directory dlbench ran in (empty outside a git checkout)."""

    commit: str = ""
    dirty: bool = False


class FrameworkRuntime(msgspec.Struct, frozen=True):
    """What a worker's framework reported after initialising: version, threads in effect, backends."""

    framework: str = ""
    version: str = ""
    threads: Annotated[int, msgspec.Meta(ge=0)] | None = None
    devices: tuple[str, ...] = ()
    backends: dict[str, str] = {}
    settings: dict[str, str] = {}
    affinity: tuple[Annotated[int, msgspec.Meta(ge=0)], ...] = ()


Positive = Annotated[float, msgspec.Meta(gt=0, le=1e12)]
NonNegative = Annotated[float, msgspec.Meta(ge=0, le=1e12)]


class Calibration(msgspec.Struct, frozen=True):
    """The float32 matrix-multiply peak measured for one thread count (``dlbench run --calibrate``)."""

    gflops: Positive
    gflops_ci_low: NonNegative | None = None
    gflops_ci_high: NonNegative | None = None
    gflops_best: NonNegative | None = None
    median_ms: NonNegative | None = None
    n_samples: Annotated[int, msgspec.Meta(ge=0)] | None = None
    iterations_per_sample: Annotated[int, msgspec.Meta(ge=0)] | None = None
    first_call_ms: NonNegative | None = None
    cpu_per_wall: NonNegative | None = None
    size: Annotated[int, msgspec.Meta(ge=1)] | None = None
    dtype: str = ""
    cores: tuple[Annotated[int, msgspec.Meta(ge=0)], ...] = ()
    blas: str = ""
    numpy: str = ""
    thread_env: dict[str, str] = {}
    threads: Threads | None = None
    precision: str = ""  # a low-precision peak (bf16, fp16), measured with `library`
    library: str = ""
    float32_same_library_gflops: NonNegative | None = None


class ControlReading(msgspec.Struct, frozen=True, omit_defaults=True):
    """One round's reading of the fixed drift control (:mod:`dlbench.runner.drift`)."""

    round: Annotated[int, msgspec.Meta(ge=1)]
    kernel: str  # the compute-bound kernel (a matmul)
    gflops: Positive
    memory_kernel: str = ""  # the memory-bound kernel (an array copy); absent before it existed
    gbps: Positive | None = None
    at: str = ""


class EnvironmentRuntime(msgspec.Struct, frozen=True):
    """What the workers of one ``--python`` environment reported (its own framework versions)."""

    workers: dict[str, FrameworkRuntime] = {}  # worker label -> its runtime

    @property
    def frameworks(self) -> dict[str, FrameworkRuntime]:
        return first_per_framework(self.workers)


def first_per_framework(workers: dict[str, FrameworkRuntime]) -> dict[str, FrameworkRuntime]:
    """One runtime per framework: the first worker's (versions agree between workers of one run)."""
    found: dict[str, FrameworkRuntime] = {}
    for label, runtime in workers.items():
        found.setdefault(runtime.framework or label.split("/")[0], runtime)
    return found


class Environment(msgspec.Struct, frozen=True):
    """Where a run ran: host, GPUs, packages, git commit, each worker's framework runtime, calibration."""

    dlbench: str = ""
    host: HostInfo = HostInfo()
    gpus: tuple[GpuInfo, ...] = ()
    git: GitInfo = GitInfo()
    packages: dict[str, str] = {}
    workers: dict[str, FrameworkRuntime] = {}  # worker label (torch/cpu/t2) -> its runtime
    calibration: dict[int, Calibration] = {}  # thread count -> matmul peak
    calibration_precisions: dict[str, dict[int, Calibration]] = {}  # precision -> thread count -> its peak
    calibration_gpu: dict[str, dict[str, Any]] = {}  # precision -> the GPU's matmul peak (dlbench.measure.calibrate)
    gpu_probes: dict[str, dict[str, Any]] = {}  # framework -> what the plan's GPU probe found (cuDNN loaded)
    # Fleet runs (--executor ray): per node its own environment, workers and the span of each group it ran;
    # each node's run of an each-node fleet run keeps the driver's environment. Kept as plain JSON objects.
    nodes: dict[str, dict[str, Any]] = {}
    driver: dict[str, Any] | None = None
    environments: dict[str, EnvironmentRuntime] = {}  # A/B runs: each --python environment's workers
    control: tuple[ControlReading, ...] = ()  # one drift-control reading per round

    @property
    def frameworks(self) -> dict[str, FrameworkRuntime]:
        return first_per_framework(self.workers)

    def runtimes(self, environment: str = "") -> dict[str, FrameworkRuntime]:
        """The framework runtimes of one ``--python`` environment ("": the interpreter running dlbench)."""
        if not environment:
            return self.frameworks
        found = self.environments.get(environment)
        return found.frameworks if found is not None else {}


class RunRecord(msgspec.Struct, kw_only=True):
    """The versioned content of ``run.json``."""

    schema_version: int = SCHEMA_VERSION
    run_id: Name
    created: str
    finished: str = ""
    status: RunStatus = "running"
    config: RunConfig
    environment: Environment = Environment()
    results: list[CaseResult] = []
    # The number of the last journal entry this snapshot holds (dlbench.record.journal); 0 before version 3
    journal_seq: Annotated[int, msgspec.Meta(ge=0)] = 0

    def environment_names(self) -> list[str]:
        """The ``--python`` environments of an A/B run, in the order given ([] for an ordinary run)."""
        return [e.name for e in self.config.environments]

    def framework_versions(self, environment: str = "") -> dict[str, str]:
        return {name: runtime.version for name, runtime in self.environment.runtimes(environment).items()}

    def to_json(self) -> str:
        """The record as indented JSON; refuses NaN and infinity (they are not JSON)."""
        return dumps(msgspec.to_builtins(self, str_keys=True))


def dumps(data: Any) -> str:
    """The one way dlbench writes JSON files: indented, and NaN/infinity refused rather than written as
    the bare tokens that other JSON readers reject."""
    import json

    return json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``run.json`` (version :data:`SCHEMA_VERSION`), generated from these types."""
    schema: dict[str, Any] = msgspec.json.schema(RunRecord)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"dlbench run record (run.json), schema version {SCHEMA_VERSION}"
    return schema


if __name__ == "__main__":  # python -m dlbench.record.schema > docs/run-schema.json
    print(dumps(json_schema()))
