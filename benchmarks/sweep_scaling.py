"""Does the harness cost per case stay constant as a sweep grows? Sweeps of the fake adapter, timed.

For each sweep size (default 100, 1,000 and 10,000 cases) this runs one sweep of the fake adapter in this
process, through the same code as ``dlbench run`` (plan, store, run loop, workers), and measures:

* harness ms per case at the start and at the end of the run: between two consecutive stored results the
  wall time minus the second case's own ``duration_s`` (inputs, build, first call, warm-up, samples), i.e.
  the store write, the progress callback, the messages between worker and parent and the worker's own
  bookkeeping, averaged over the first and over the last tenth of the cases (at least 10 cases). The very
  first result is left out: its gap holds the worker's start;
* store ms per case at the start and at the end: the time inside ``RunStore.add`` alone (what the parent
  spends persisting a result; it overlaps the worker's next case, so it shows in the harness time only once
  it is the slower of the two, as the rewrite of whole files was);
* harness ms per case over the whole run: (wall - the sum of the cases' ``duration_s``) / cases, the
  worker's start and the run's start and finish included;
* each reader on the finished run, as a user runs it (a fresh ``python -m dlbench`` process): ``report``,
  ``compare`` (the run against itself), ``compare --within`` (the run copied as an A/B run of two
  environments, twice the results), ``history`` (a directory holding the run), ``export --format json``;
* ``run --resume`` of the run interrupted after nine tenths of its cases (a copy of the run whose record
  holds only those, left as a ``kill -9`` leaves it): its start-up (reopening the record, planning what is
  pending; in this process) and its whole wall time (a fresh process, measuring the last tenth).

The sweep: the autoencoder's four phases, both passes, the fake's ``default`` and ``fast`` variants in float32
and bf16 (32 cases per batch size; batch sizes 1, 2, ... as many as needed, the list cut to the size asked),
one thread, one worker, and a measurement protocol cut to its minimum (3 samples, no warm-up time) so that
the harness, not the cases, dominates the wall clock: the worst case for the harness's share.

    python benchmarks/sweep_scaling.py [--cases 100,1000,10000] [--keep DIR] [--no-readers] [--no-resume]
        [--profile N] [--fleet 1000,5000 [--nodes 2]]

``--fleet`` also runs spread sweeps on a local Ray cluster (a head and ``--nodes`` one-CPU nodes on this
machine) and reports the driver's own time per case (storing the result and extending its group's span)
at the start and at the end. ``--profile N`` also writes a cProfile of the sweep of N cases (``sweep-N.prof``
in the kept directory).
The machine is rarely quiet: run it alone, and say what else ran when quoting the numbers.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlbench.machine import capture  # noqa: E402
from dlbench.plan.planner import make_plan  # noqa: E402
from dlbench.plan.suite import Overrides  # noqa: E402
from dlbench.record.results import CaseResult  # noqa: E402
from dlbench.record.schema import Environment, PythonEnvironment, RunRecord  # noqa: E402
from dlbench.record.store import RunStore, load_run, now_iso  # noqa: E402
from dlbench.runner import session  # noqa: E402
from dlbench.runner.executor import Executor, LocalExecutor  # noqa: E402
from dlbench.runner.schedule import RunLoop  # noqa: E402

CASES_PER_BATCH = 32  # 4 autoencoder phases x 2 passes x 2 variants x 2 precisions
SUITE = """\
name = "sweep-scaling"
description = "benchmarks/sweep_scaling.py: many short fake cases, the harness's worst case"
workloads = ["autoencoder"]
passes = ["forward", "gradient"]
frameworks = ["fake"]
variants = {{ fake = ["default", "fast"] }}
precision = ["float32", "bf16"]

[devices.cpu]
threads = [1]
batch_sizes = [{batches}]

[measure]
warmup_s = 0.0
min_warmup = 1
min_block_s = 0.0
min_samples = 3
max_samples = 3
min_time_s = 0.0
max_time_s = 1.0
timeout_s = 120
"""
READERS = ("report", "compare", "compare --within", "history", "export")


@dataclass
class Stamps:
    """A :class:`dlbench.runner.session.Progress` that notes when each result was stored."""

    at: list[float] = field(default_factory=list)
    results: list[CaseResult] = field(default_factory=list)

    def total(self, cases: int) -> None:
        pass

    def result(self, result: CaseResult) -> None:
        self.at.append(time.perf_counter())
        self.results.append(result)

    def note(self, text: str) -> None:
        print(f"  note: {text}", file=sys.stderr)

    def step(self, text: str) -> None:
        pass


@dataclass
class Sweep:
    cases: int
    wall_s: float
    inside_s: float
    start_ms: float
    end_ms: float
    store_start_ms: float
    store_end_ms: float
    readers_s: dict[str, float] = field(default_factory=dict)
    resume_startup_s: float | None = None
    resume_wall_s: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def overall_ms(self) -> float:
        return 1e3 * (self.wall_s - self.inside_s) / self.cases


def write_suite(directory: Path, cases: int) -> Path:
    batches = ", ".join(str(b) for b in range(1, math.ceil(cases / CASES_PER_BATCH) + 1))
    path = directory / "sweep.toml"
    path.write_text(SUITE.format(batches=batches))
    return path


def fresh_record(suite: Path, cases: int, fleet: bool = False) -> tuple[RunRecord, list]:
    plan = make_plan(str(suite), Overrides(frameworks=("fake",), devices=("cpu",)), fleet=fleet)
    plan = replace(plan, cases=plan.cases[:cases])
    if len(plan.cases) != cases:
        raise SystemExit(f"the sweep plans {len(plan.cases)} cases, not {cases}")
    config = session.run_config(plan, seed=None, memory_limit_mb=None)
    record = RunRecord(run_id=session.new_run_id(), created=now_iso(), config=config,
                       environment=msgspec.convert(capture.capture(plan.gpu_probes), Environment))
    return record, plan.cases


def window_ms(stamps: Stamps, started: float, first: bool) -> float:
    """Mean harness ms per case over the first (or last) tenth of the results, the very first left out."""
    gaps = []
    previous = started
    for at, result in zip(stamps.at, stamps.results, strict=True):
        gaps.append(at - previous - (result.duration_s or 0.0))
        previous = at
    start, end = edges_ms(gaps[1:])  # the first gap holds the worker's start
    return start if first else end


def edges_ms(values: list[float]) -> tuple[float, float]:
    """Mean ms over the first and over the last tenth (at least 10 values). The parent stores a result while
    the worker already runs the next case, so a gap can be shorter than its case: near zero, these means can
    be negative; the whole-run column (wall minus the cases' own time) is the one that cannot."""
    width = max(10, len(values) // 10)
    return 1e3 * statistics.fmean(values[:width]), 1e3 * statistics.fmean(values[-width:])


def run_sweep(directory: Path, cases: int, profile: Path | None) -> Sweep:
    suite = write_suite(directory, cases)
    record, planned = fresh_record(suite, cases)
    stamps = Stamps()
    store = RunStore.open(directory / "run", record)
    adds: list[float] = []
    plain_add = RunStore.add

    def timed_add(self: RunStore, result: CaseResult) -> None:
        began = time.perf_counter()
        plain_add(self, result)
        adds.append(time.perf_counter() - began)

    RunStore.add = timed_add  # type: ignore[method-assign]  # this process only, for this sweep
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    try:
        if profiler is not None:
            profiler.enable()
        status = session.run_local(store, planned, stamps)
        if profiler is not None:
            profiler.disable()
    finally:
        store.close()
        RunStore.add = plain_add  # type: ignore[method-assign]
    wall = time.perf_counter() - started
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
    if status != session.COMPLETE:
        raise SystemExit(f"the sweep of {cases} cases ended {status}")
    inside = sum(r.duration_s or 0.0 for r in stamps.results)
    statuses: dict[str, int] = {}
    for result in stamps.results:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    return Sweep(cases, wall, inside, window_ms(stamps, started, True), window_ms(stamps, started, False),
                 *edges_ms(adds), statuses=statuses)


@dataclass
class FleetSweep:
    cases: int
    nodes: int
    wall_s: float
    driver_start_ms: float
    driver_end_ms: float


def run_fleet_sweep(directory: Path, cases: int, nodes: int) -> FleetSweep:
    """A spread sweep over a local Ray cluster (a head that runs nothing, ``nodes`` one-CPU nodes), driven
    from this process; the driver's own time per case (storing the result and extending its group's span,
    on the driver's main thread) at the start and at the end."""
    from ray.cluster_utils import Cluster

    from dlbench.fleet.driver import connect
    from dlbench.fleet.nodes import SPREAD
    from dlbench.fleet.sweep import FleetOptions, StoreSink, run_fleet

    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(nodes):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    timings: list[float] = []
    plain_result, plain_span = StoreSink.result, StoreSink.span
    pending_span = [0.0]

    def timed_span(self: StoreSink, node: Any, event: dict[str, Any]) -> None:
        began = time.perf_counter()
        plain_span(self, node, event)
        pending_span[0] += time.perf_counter() - began

    def timed_result(self: StoreSink, node_id: str | None, result: CaseResult) -> None:
        began = time.perf_counter()
        plain_result(self, node_id, result)
        timings.append(time.perf_counter() - began + pending_span[0])
        pending_span[0] = 0.0

    try:
        suite = write_suite(directory, cases)
        record, planned = fresh_record(suite, cases, fleet=True)
        options = FleetOptions(address=cluster.address, placement=SPREAD)
        connect(options.address)
        record.config = msgspec.structs.replace(record.config, executor=options.to_config())
        store = RunStore.open(directory / "fleet", record)
        StoreSink.result, StoreSink.span = timed_result, timed_span  # type: ignore[method-assign]
        started = time.perf_counter()
        try:
            status = run_fleet({None: store}, store.record, options, planned, None, Stamps())
        finally:
            StoreSink.result, StoreSink.span = plain_result, plain_span  # type: ignore[method-assign]
            store.close()
        wall = time.perf_counter() - started
    finally:
        cluster.shutdown()
    if status != session.COMPLETE:
        raise SystemExit(f"the fleet sweep of {cases} cases ended {status}")
    return FleetSweep(cases, nodes, wall, *edges_ms(timings))


def cli(*args: str) -> float:
    """Seconds of one ``python -m dlbench ...`` (its output discarded; a failure stops the benchmark)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dlbench", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):  # compare and run exit 1 for a verdict or a failed case; 2 is an error
        raise SystemExit(f"dlbench {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return seconds


def time_readers(directory: Path, sweep: Sweep) -> None:
    run = directory / "run"
    history_root = directory / "history"
    history_root.mkdir()
    shutil.copytree(run, history_root / "run", ignore=shutil.ignore_patterns(".lock"))
    sweep.readers_s["report"] = cli("report", str(run), "--output", str(directory / "report"))
    sweep.readers_s["compare"] = cli("compare", str(run), str(run), "--format", "json")
    sweep.readers_s["history"] = cli("history", str(history_root))
    ab_copy(load_run(run), directory / "ab")
    within = ("compare", "--within", str(directory / "ab"), "a", "b", "--format", "json")
    sweep.readers_s["compare --within"] = cli(*within)
    sweep.readers_s["export"] = cli("export", str(run), "--format", "json", "--output", str(directory / "x.json"))


def ab_copy(finished: RunRecord, target: Path) -> None:
    """The run as an A/B run of two environments ``a`` and ``b`` that measured the same (every result twice,
    once per environment): what ``compare --within`` reads, at twice the results, written as a finished run."""
    environments = tuple(PythonEnvironment(name=name, python=sys.executable) for name in ("a", "b"))
    results = [msgspec.structs.replace(r, environment=e.name) for e in environments for r in finished.results]
    record = RunRecord(run_id=finished.run_id, created=finished.created, environment=finished.environment,
                       config=msgspec.structs.replace(finished.config, environments=environments), results=results)
    store = RunStore.open(target, record)
    try:
        store.finish("complete")
    finally:
        store.close()


def interrupted_copy(finished: RunRecord, target: Path, kept: int) -> None:
    """The run as a ``kill -9`` after ``kept`` cases leaves it: a store opened fresh, the first ``kept``
    results added one by one, as the run loop adds them, and never finished."""
    template = RunRecord(run_id=finished.run_id, created=finished.created, config=finished.config,
                         environment=finished.environment)
    store = RunStore.open(target, template)
    try:
        for result in finished.results[:kept]:
            store.add(result)
    finally:
        store.close()


def time_resume(directory: Path, sweep: Sweep) -> None:
    finished = load_run(directory / "run")
    kept = sweep.cases * 9 // 10
    startup, whole = directory / "resume-startup", directory / "resume-whole"
    interrupted_copy(finished, startup, kept)
    shutil.copytree(startup, whole)
    started = time.perf_counter()
    store, cases = session.reopen(startup, None)
    try:
        executors: dict[str, Executor] = {e.name: LocalExecutor() for e in store.record.config.environments} \
            or {"": LocalExecutor()}
        pending = RunLoop(store=store, executors=executors, config=store.record.config).pending_count(cases)
    finally:
        store.close()
    sweep.resume_startup_s = time.perf_counter() - started
    if pending != sweep.cases - kept:
        raise SystemExit(f"the interrupted copy has {pending} pending cases, not {sweep.cases - kept}")
    sweep.resume_wall_s = cli("run", "--resume", str(whole), "--quiet")
    resumed = load_run(whole)
    keys = [(r.environment, r.case.key) for r in resumed.results]
    if len(keys) != len(set(keys)) or len(keys) != sweep.cases:
        raise SystemExit(f"the resumed run holds {len(keys)} results ({len(set(keys))} distinct), "
                         f"not {sweep.cases}")


def table(sweeps: Sequence[Sweep]) -> str:
    head = ("| cases | harness ms/case, start | harness ms/case, end | harness ms/case, whole run "
            "| store ms/case, start | store ms/case, end | wall s "
            "| report s | compare s | compare --within s | history s | export s | resume start-up s | resume s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for s in sweeps:
        readers = " | ".join(seconds(s.readers_s.get(name)) for name in READERS)
        lines.append(f"| {s.cases:,} | {s.start_ms:.2f} | {s.end_ms:.2f} | {s.overall_ms:.2f} "
                     f"| {s.store_start_ms:.2f} | {s.store_end_ms:.2f} | {s.wall_s:.1f} "
                     f"| {readers} | {seconds(s.resume_startup_s)} | {seconds(s.resume_wall_s)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="100,1000,10000", help="comma list of sweep sizes")
    parser.add_argument("--keep", type=Path, help="keep the runs in this directory (default: a temporary one)")
    parser.add_argument("--no-readers", action="store_true", help="time the sweeps only")
    parser.add_argument("--no-resume", action="store_true", help="do not time --resume")
    parser.add_argument("--profile", type=int, default=None, metavar="N", help="cProfile the sweep of N cases")
    parser.add_argument("--fleet", default="", metavar="N,...",
                        help="also run spread sweeps of these sizes on a local Ray cluster (needs ray)")
    parser.add_argument("--nodes", type=int, default=2, help="worker nodes of the local Ray cluster")
    args = parser.parse_args()
    sizes = [int(part) for part in args.cases.split(",") if part.strip()]
    base = args.keep or Path(tempfile.mkdtemp(prefix="dlbench-sweep-"))
    base.mkdir(parents=True, exist_ok=True)
    sweeps = []
    for cases in sizes:
        directory = base / f"sweep-{cases}"
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir()
        profile = base / f"sweep-{cases}.prof" if args.profile == cases else None
        print(f"sweep of {cases:,} cases in {directory} ...", file=sys.stderr, flush=True)
        sweep = run_sweep(directory, cases, profile)
        print(f"  wall {sweep.wall_s:.1f} s, harness {sweep.start_ms:.2f} -> {sweep.end_ms:.2f} ms/case, store "
              f"{sweep.store_start_ms:.2f} -> {sweep.store_end_ms:.2f} ms/case, statuses {sweep.statuses}",
              file=sys.stderr, flush=True)
        if not args.no_readers:
            time_readers(directory, sweep)
            print(f"  readers {sweep.readers_s}", file=sys.stderr, flush=True)
        if not args.no_resume:
            time_resume(directory, sweep)
            print(f"  resume start-up {sweep.resume_startup_s:.2f} s, whole {sweep.resume_wall_s:.1f} s",
                  file=sys.stderr, flush=True)
        sweeps.append(sweep)
        if args.keep is None:
            shutil.rmtree(directory)
    print(table(sweeps))
    fleet_sizes = [int(part) for part in args.fleet.split(",") if part.strip()]
    if fleet_sizes:
        print("\n| fleet cases | nodes | driver ms/case, start | driver ms/case, end | wall s |\n|---|---|---|---|---|")
    for cases in fleet_sizes:
        directory = base / f"fleet-{cases}"
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir()
        print(f"fleet sweep of {cases:,} cases in {directory} ...", file=sys.stderr, flush=True)
        fleet = run_fleet_sweep(directory, cases, args.nodes)
        print(f"| {fleet.cases:,} | {fleet.nodes} | {fleet.driver_start_ms:.2f} | {fleet.driver_end_ms:.2f} "
              f"| {fleet.wall_s:.1f} |", flush=True)
        if args.keep is None:
            shutil.rmtree(directory)


if __name__ == "__main__":
    main()
