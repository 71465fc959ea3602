"""Suite files (TOML, data only: never executed) and their expansion into cases.

A suite names workloads, passes, frameworks, variants, and per device the thread counts and batch sizes::

    name = "lenet"
    workloads = ["lenet"]
    [devices.cpu]
    threads = [1, 2]
    batch_sizes = [16, 64]            # or a table per workload: { lenet = [64], lstm = [16] }
    [devices.gpu]
    batch_sizes = [64, 256]
    variants = { torch = ["channels_last", "eager"] }   # per device, replacing the suite's variants
    [measure]
    max_time_s = 5

A top-level ``gpu = "0"`` (an index or a UUID) chooses the GPU of the GPU cases, like ``run --gpu``.

Every key is checked: unknown keys and wrong types are errors with a one-line message, as are unknown
frameworks, workloads, phases and variants (checked later, against the registry, in :func:`expand`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dlbench.cases.precision import check_precisions
from dlbench.cases.spec import DEVICES, MAX_BATCH_SIZE, MAX_SEED, MAX_THREADS, NATIVE_CONV, Case, check_convs
from dlbench.errors import SuiteError
from dlbench.measure.timing import MeasureConfig
from dlbench.process.placement import check_gpu_selector
from dlbench.record.files import read_regular_text
from dlbench.record.schema import DeviceSettings as StoredDevice
from dlbench.record.schema import SuiteRecord
from dlbench.workloads import (
    PASSES,
    all_workload_names,
    broken_workloads,
    check_pass,
    entry_workload,
    get_workload,
    select_phases,
    workload_names,
)

PACKAGED_SUITES = Path(__file__).resolve().parents[2] / "suites"  # the repository's suites/
# A suite is a few hundred bytes. The file (and so what run.json stores of it) is limited: a suite of
# megabytes is a mistake, and would be copied into every run record and rewritten after every case.
SUITE_FILE_LIMIT = 256 * 2**10
TOP_KEYS = {"name", "description", "workloads", "passes", "frameworks", "variants", "precision", "conv",
            "devices", "measure", "seed", "executor", "gpu"}
DEVICE_KEYS = {"threads", "batch_sizes", "variants"}
EXECUTOR_KEYS = {"resources"}


@dataclass(frozen=True)
class DeviceSettings:
    threads: tuple[int, ...]
    batch_sizes: Mapping[str, tuple[int, ...]]  # workload -> batch sizes
    # framework -> variants on this device, replacing the suite's (e.g. the GPU runs torch's NCHW eager too)
    variants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """A validated suite. ``frameworks`` empty means every installed (non-hidden) framework;
    ``variants`` maps a framework to its variants (absent: the adapter's default)."""

    name: str
    description: str
    workloads: tuple[str, ...]  # "autoencoder" or "autoencoder/pretrain1"
    passes: tuple[str, ...]
    frameworks: tuple[str, ...]
    variants: Mapping[str, tuple[str, ...]]
    precisions: tuple[str, ...]  # see dlbench.cases.precision; the TOML key is ``precision`` (a name or a list)
    devices: Mapping[str, DeviceSettings]
    measure: MeasureConfig
    seed: int = 0
    source: str = ""
    notes: tuple[str, ...] = field(default=())
    resources: Mapping[str, float] = field(default_factory=dict)  # Ray resources a node needs (fleet runs)
    gpu: str = ""  # the GPU of the GPU cases (index or UUID); "" = the default (dlbench.process.placement)
    # Convolution algorithms (the TOML key is ``conv``: a name, a list or "all"); workloads without a
    # convolution run "native" only.
    convs: tuple[str, ...] = (NATIVE_CONV,)

    def record(self) -> SuiteRecord:
        """What the run record keeps of this suite (measurement settings and seed are the run's own)."""
        return SuiteRecord(
            name=self.name, description=self.description, source=self.source, workloads=self.workloads,
            passes=self.passes, frameworks=self.frameworks, variants=dict(self.variants), precisions=self.precisions,
            convs=self.convs,
            devices={d: StoredDevice(threads=s.threads, batch_sizes=dict(s.batch_sizes), variants=dict(s.variants))
                     for d, s in self.devices.items()},
            notes=self.notes, resources=dict(self.resources), gpu=self.gpu,
        )


# ---------------------------------------------------------------- type checks with one-line messages
def _fail(where: str, message: str) -> SuiteError:
    return SuiteError(f"{where}: {message}")


def _str_list(value: Any, where: str, non_empty: bool = False) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, "expected a list of strings")
    if non_empty and not value:
        raise _fail(where, "expected at least one name")
    return tuple(value)


def positive_ints(value: Any, where: str, maximum: int) -> tuple[int, ...]:
    """Whole numbers from 1 to ``maximum`` (a documented bound: see :data:`dlbench.cases.spec.MAX_BATCH_SIZE`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _fail(where, "expected a non-empty list of whole numbers")
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool):
            raise _fail(where, f"{v!r} is not a whole number")
        if v < 1:
            raise _fail(where, f"{v} is below 1")
        if v > maximum:
            raise _fail(where, f"{v} is above the limit of {maximum}")
    return tuple(dict.fromkeys(value))


def _check_keys(table: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def parse_measure(table: Any, where: str) -> MeasureConfig:
    """A ``[measure]`` table: known keys only, each value finite, of the right type and in range."""
    if not isinstance(table, dict):
        raise _fail(where, "expected a table")
    _check_keys(table, MeasureConfig.__struct_fields__, where)
    try:
        return MeasureConfig(**table)
    except ValueError as exc:
        raise _fail(where, str(exc)) from None


# The key of a batch-size table that stands for every workload it does not name, so that a suite that runs
# every registered workload (no ``workloads`` key) also sizes the installed plugins.
OTHER_WORKLOADS = "*"
SKIPPED_PLUGIN = "workload plugin skipped: "  # the note of a broken plugin left out of a suite of every workload


def _batch_sizes(value: Any, workloads: tuple[str, ...], where: str) -> dict[str, tuple[int, ...]]:
    names = {entry_workload(w) for w in workloads}
    if isinstance(value, dict):
        _check_keys(value, (*all_workload_names(), OTHER_WORKLOADS), where)
        sizes = {w: positive_ints(v, f"{where}.{w}", MAX_BATCH_SIZE) for w, v in value.items()}
        other = sizes.pop(OTHER_WORKLOADS, None)  # "*": every workload the table does not name (plugins)
        if other is not None:
            sizes.update({w: other for w in names if w not in sizes})
        missing = sorted(names - set(sizes))
        if missing:
            raise _fail(where, f"no batch sizes for workload {missing[0]!r}")
        return sizes
    sizes_all = positive_ints(value, where, MAX_BATCH_SIZE)
    return {w: sizes_all for w in names}


def parse_suite(data: Mapping[str, Any], source: str = "<suite>") -> Suite:
    _check_keys(data, TOP_KEYS, source)
    workloads = _str_list(data.get("workloads", list(workload_names())), f"{source}: workloads", non_empty=True)
    for w in workloads:
        select_phases(w)
    passes = _str_list(data.get("passes", list(PASSES)), f"{source}: passes", non_empty=True)
    try:
        for p in passes:
            check_pass(p)
    except SuiteError as exc:
        raise _fail(f"{source}: passes", str(exc)) from None
    variants_raw = data.get("variants", {})
    if not isinstance(variants_raw, dict):
        raise _fail(f"{source}: variants", "expected a table framework = [variants]")
    variants = {fw: _str_list(v, f"{source}: variants.{fw}") for fw, v in variants_raw.items()}
    precisions = check_precisions(_str_list(data.get("precision", ["float32"]), f"{source}: precision"),
                                  f"{source}: precision")
    convs = check_convs(_str_list(data.get("conv", [NATIVE_CONV]), f"{source}: conv", non_empty=True),
                        f"{source}: conv")
    devices_raw = data.get("devices", {"cpu": {"threads": [1], "batch_sizes": [16]}})
    if not isinstance(devices_raw, dict) or not devices_raw:
        raise _fail(f"{source}: devices", "expected a table with [devices.cpu] and/or [devices.gpu]")
    devices: dict[str, DeviceSettings] = {}
    for device, table in devices_raw.items():
        where = f"{source}: devices.{device}"
        if device not in DEVICES:
            raise _fail(f"{source}: devices", f"unknown device {device!r} (known: {', '.join(DEVICES)})")
        if not isinstance(table, dict):
            raise _fail(where, "expected a table")
        _check_keys(table, DEVICE_KEYS, where)
        if "batch_sizes" not in table:
            raise _fail(where, "missing key 'batch_sizes'")
        default_threads = [1] if device == "cpu" else [len(os.sched_getaffinity(0))]
        device_variants = table.get("variants", {})
        if not isinstance(device_variants, dict):
            raise _fail(f"{where}.variants", "expected a table framework = [variants]")
        devices[device] = DeviceSettings(
            threads=positive_ints(table.get("threads", default_threads), f"{where}.threads", MAX_THREADS),
            batch_sizes=_batch_sizes(table["batch_sizes"], workloads, f"{where}.batch_sizes"),
            variants={fw: _str_list(v, f"{where}.variants.{fw}", non_empty=True) for fw, v in device_variants.items()},
        )
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise _fail(f"{source}: seed", f"expected a whole number from 0 to {MAX_SEED}")
    name = data.get("name", Path(source).stem)
    description = data.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise _fail(source, "name and description must be strings")
    # A suite that runs every registered network skips the broken workload plugins, and says so in one line each
    broken = () if "workloads" in data else tuple(broken_workloads().values())
    skipped = tuple(f"{SKIPPED_PLUGIN}{reason}" for reason in broken)
    return Suite(
        name=name, description=description, workloads=workloads, passes=passes, notes=skipped,
        frameworks=_str_list(data.get("frameworks", []), f"{source}: frameworks"), variants=variants,
        precisions=precisions, convs=convs, devices=devices,
        measure=parse_measure(data.get("measure", {}), f"{source}: measure"), seed=seed, source=source,
        resources=parse_resources(data.get("executor", {}), f"{source}: executor"),
        gpu=parse_gpu(data.get("gpu", ""), f"{source}: gpu"),
    )


def parse_gpu(value: Any, where: str) -> str:
    """``gpu = 0`` or ``gpu = "GPU-..."``: one GPU (see :func:`dlbench.process.placement.check_gpu_selector`)."""
    if value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _fail(where, "expected a GPU index or UUID")
    return check_gpu_selector(str(value), where)


def suite_dirs() -> tuple[Path, ...]:
    """./suites (of the current directory, read when needed: it may have been deleted), then the shipped
    suites."""
    try:
        here = Path.cwd() / "suites"
    except OSError:  # the current directory no longer exists
        return (PACKAGED_SUITES,)
    return (here, PACKAGED_SUITES)


def parse_resources(table: Any, where: str) -> dict[str, float]:
    """``[executor] resources = {bench_host = 1, "gpu_type:H100" = 1}``: the Ray resources (node labels)
    a node must offer to run this suite's cases in a fleet run."""
    if not isinstance(table, dict):
        raise _fail(where, "expected a table")
    _check_keys(table, EXECUTOR_KEYS, where)
    raw = table.get("resources", {})
    if not isinstance(raw, dict):
        raise _fail(f"{where}.resources", "expected a table name = amount")
    resources = {}
    for name, amount in raw.items():
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 < amount < float("inf"):
            raise _fail(f"{where}.resources.{name}", "expected a positive number")
        resources[str(name)] = float(amount)
    return resources


def suite_path(name_or_path: str) -> Path:
    """A suite by file path, or by name from ./suites or the suites shipped with dlbench."""
    candidate = Path(name_or_path)
    if not name_or_path.strip():
        raise SuiteError("an empty suite name names no suite")
    if candidate.suffix == ".toml" or os.sep in name_or_path:
        if not candidate.exists():
            raise SuiteError(f"suite file {name_or_path} not found")
        return candidate
    for directory in suite_dirs():
        path = directory / f"{name_or_path}.toml"
        if path.is_file():
            return path
    raise SuiteError(f"unknown suite {name_or_path!r}; known: {', '.join(available_suites()) or '(none)'}")


def available_suites() -> list[str]:
    names: set[str] = set()
    for directory in suite_dirs():
        if directory.is_dir():
            names.update(p.stem for p in directory.glob("*.toml"))
    return sorted(names)


def load_suite(name_or_path: str) -> Suite:
    path = suite_path(name_or_path)
    text = read_regular_text(path, SUITE_FILE_LIMIT, "suite file", SuiteError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: malformed TOML ({exc})") from None
    except RecursionError:
        raise SuiteError(f"{path}: malformed TOML (nested too deeply)") from None
    return parse_suite(data, str(path))


# ---------------------------------------------------------------- overrides and expansion
@dataclass(frozen=True)
class Overrides:
    """Command-line options; each one given replaces the suite's setting."""

    frameworks: tuple[str, ...] = ()
    workloads: tuple[str, ...] = ()
    passes: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    threads: tuple[int, ...] = ()
    batch_sizes: tuple[int, ...] = ()
    precisions: tuple[str, ...] = ()
    convs: tuple[str, ...] = ()  # --conv
    measure: Mapping[str, Any] = field(default_factory=dict)
    gpu: str = ""  # --gpu


def apply_overrides(suite: Suite, o: Overrides, cores: int) -> Suite:
    """The suite as the command line amends it. Threads from the command line beyond ``cores`` are an
    error; a suite's own thread counts are limited to the cores present (noted in the run)."""
    notes = [n for n in suite.notes if not (o.workloads and n.startswith(SKIPPED_PLUGIN))]  # named: not skipped
    workloads = o.workloads or suite.workloads
    if o.workloads:
        suite = replace(suite, workloads=workloads)
        for w in workloads:
            select_phases(w)
    passes = o.passes or suite.passes
    for p in passes:
        check_pass(p)
    devices: dict[str, DeviceSettings] = {}
    for device in o.devices or tuple(suite.devices):
        if device not in DEVICES:
            raise SuiteError(f"unknown device {device!r} (known: {', '.join(DEVICES)})")
        base = suite.devices.get(device) or next(iter(suite.devices.values()))
        threads = o.threads or base.threads
        if o.threads and max(o.threads) > cores:
            raise SuiteError(f"--threads {max(o.threads)} is more than the {cores} cores available here")
        if not o.threads and device == "cpu" and max(threads) > cores:
            limited = tuple(dict.fromkeys(min(t, cores) for t in threads))
            notes.append(f"cpu threads {list(threads)} limited to the {cores} cores present: {list(limited)}")
            threads = limited
        if device == "gpu" and not o.threads:
            threads = tuple(min(t, cores) for t in threads)
        if device == "gpu" and len(threads) > 1:  # a GPU case's key has no thread count: one count only
            notes.append(f"gpu threads {list(threads)}: GPU cases run with one host thread count, {max(threads)}")
            threads = (max(threads),)
        names = {entry_workload(w) for w in workloads}
        if o.batch_sizes:
            sizes = {w: o.batch_sizes for w in names}
        else:
            sizes = dict(base.batch_sizes)
            for w in names - set(sizes):  # a workload chosen on the command line that the suite lacks
                sizes[w] = (get_workload(w).paper_batch_size,)
        # a device's own variants give way to --variant, as the suite's do
        devices[device] = DeviceSettings(threads=threads, batch_sizes=sizes,
                                         variants={} if o.variants else dict(base.variants))
    measure = suite.measure
    if o.measure:
        try:
            measure = MeasureConfig(**{**measure.to_dict(), **o.measure})
        except ValueError as exc:
            raise SuiteError(str(exc)) from None
    precisions = check_precisions(o.precisions, "--precision") if o.precisions else suite.precisions
    gpu = check_gpu_selector(o.gpu) if o.gpu else suite.gpu
    convs = check_convs(o.convs, "--conv") if o.convs else suite.convs
    return replace(suite, workloads=workloads, passes=passes, devices=devices, measure=measure,
                   frameworks=o.frameworks or suite.frameworks, precisions=precisions, notes=tuple(notes), gpu=gpu,
                   convs=convs)


def expand(suite: Suite, frameworks: Mapping[str, tuple[str, ...]]) -> list[Case]:
    """Every case of the suite, for the given frameworks and their variants (a device's own ``variants``
    replace them on that device), in a readable order. The convolution algorithms multiply only the
    workloads that have convolutions: the others run ``native``, the only algorithm they have."""
    cases = []
    for device, settings in suite.devices.items():
        for threads in settings.threads:
            for framework, chosen in frameworks.items():
                for variant in settings.variants.get(framework, chosen):
                    for entry in suite.workloads:
                        name, phases = select_phases(entry)
                        convs = suite.convs if get_workload(name).has_convolutions else (NATIVE_CONV,)
                        for batch in settings.batch_sizes[name]:
                            for phase in phases:
                                for precision in suite.precisions:
                                    for conv in convs:
                                        for pass_ in suite.passes:
                                            cases.append(Case(
                                                workload=name, phase=phase, pass_=pass_, framework=framework,
                                                variant=variant, device=device, threads=threads,
                                                batch_size=batch, precision=precision, conv=conv))
    return list(dict.fromkeys(cases))
