"""``dlbench run``: plan the cases, run them in isolated workers, store every result at once."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click
import msgspec
from click.core import ParameterSource
from rich.progress import Progress, TaskID

from dlbench.cases.spec import MAX_BATCH_SIZE, MAX_SEED, MAX_THREADS, Case
from dlbench.cli.options import CommaList, Number, flatten
from dlbench.cli.paths import NonEmptyPath
from dlbench.display.progress import console, conv_summary_table, describe, out, progress_bar, summary_table
from dlbench.display.terminal import plain
from dlbench.errors import DlbenchError
from dlbench.fleet.driver import connect
from dlbench.fleet.nodes import EACH_NODE, PLACEMENTS, SPREAD
from dlbench.fleet.sweep import (
    FleetOptions,
    each_node_dirs,
    each_node_factory,
    is_fleet_config,
    reopen_each_node,
    run_fleet,
)
from dlbench.machine import capture as environment
from dlbench.measure.timing import ABSOLUTE_MIN_SAMPLES, MAX_REPEATS, MAX_SAMPLE_COUNT, MAX_SECONDS
from dlbench.plan.planner import make_plan
from dlbench.plan.suite import Overrides
from dlbench.process.placement import available_cores
from dlbench.record.results import CRASHED, FAILED, OOM, TIMEOUT, CaseResult
from dlbench.record.schema import (
    INTERLEAVES,
    MAX_MEMORY_LIMIT_MB,
    Environment,
    RunRecord,
)
from dlbench.record.store import RunStore, now_iso
from dlbench.runner.session import fit_to_cores, new_run_id, parse_environments, reopen, run_config, run_local

FAILURES = (FAILED, CRASHED, TIMEOUT, OOM)
EXIT_INTERRUPTED = 130
EXECUTORS = ("local", "ray")


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends a run like Ctrl-C: the running case is stopped and everything measured is saved."""
    raise KeyboardInterrupt


def measure_overrides(max_time: float | None, min_samples: int | None, timeout: float | None,
                      repeat: int | None = None) -> dict[str, Any]:
    given = {"max_time_s": max_time, "min_samples": min_samples, "timeout_s": timeout, "repeats": repeat}
    return {k: v for k, v in given.items() if v is not None}


@click.command("run")
@click.option("--suite", "-s", default="default", show_default=True, help="Suite name (suites/NAME.toml) or path.")
@click.option("--framework", "-f", "frameworks", multiple=True, type=CommaList(label="framework"),
              help="Frameworks to run (default: every installed one).")
@click.option("--workload", "-w", "workloads", multiple=True, type=CommaList(label="workload"),
              help="Workloads, e.g. lenet or autoencoder/pretrain1.")
@click.option("--pass", "passes", multiple=True, type=CommaList(label="pass"), help="forward, gradient.")
@click.option("--variant", "variants", multiple=True, type=CommaList(label="variant"),
              help="Framework variants (e.g. eager, channels_last, xla) or 'all'.")
@click.option("--device", "-d", "devices", multiple=True, type=CommaList(label="device"), help="cpu, gpu.")
@click.option("--gpu", "gpu", help="The GPU of the GPU cases: an index as nvidia-smi numbers them, or a UUID "
                                   "(GPU-...; nvidia-smi -L) [the suite's gpu, else the first GPU in "
                                   "CUDA_VISIBLE_DEVICES, else 0].")
@click.option("--threads", "-t", multiple=True,
              type=CommaList(positive_int=True, label="thread count", maximum=MAX_THREADS),
              help="CPU thread counts, e.g. 1,2.")
@click.option("--batch-size", "-b", "batch_sizes", multiple=True,
              type=CommaList(positive_int=True, label="batch size", maximum=MAX_BATCH_SIZE),
              help=f"Batch sizes, e.g. 16,64 (at most {MAX_BATCH_SIZE}).")
@click.option("--precision", "precisions", multiple=True, type=CommaList(label="precision"),
              help="float32 (default), tf32 (GPU), bf16, fp16 (mixed precision), e.g. float32,bf16.")
@click.option("--conv", "convs", multiple=True, type=CommaList(label="convolution algorithm"),
              help="Convolution algorithms of the convolutional workloads: native (default), im2col, fft, "
                   "direct, or all; e.g. native,fft.")
@click.option("--output", "-o", type=NonEmptyPath(path_type=Path), help="Results directory [results/<run-id>].")
@click.option("--resume", type=NonEmptyPath(path_type=Path), help="Finish the interrupted run in this directory.")
@click.option("--timeout", type=Number(0, MAX_SECONDS, above=True), help="Seconds per case before it is killed.")
@click.option("--max-time", type=Number(0, MAX_SECONDS, above=True), help="Sampling budget per case (s).")
@click.option("--min-samples", type=Number(ABSOLUTE_MIN_SAMPLES, MAX_SAMPLE_COUNT, integer=True),
              help="Samples per case at the least.")
@click.option("--repeat", type=click.IntRange(min=1, max=MAX_REPEATS),
              help="Rounds: measure every case in this many separately launched worker processes, rounds "
                   "interleaved (default: the suite's measure.repeats, else 1). 3 or more for compare.")
@click.option("--control/--no-control", "control", default=None,
              help="Measure a fixed drift control (a pinned matmul) at the start of every round [default: on "
                   "with --repeat 2 or more]; compare reports how much the machine moved.")
@click.option("--python", "pythons", multiple=True, metavar="NAME=PATH",
              help="Run every case with this interpreter too (repeatable, e.g. base=venvA/bin/python "
                   "head=venvB/bin/python): an A/B run, judged with dlbench compare --within RUN base head.")
@click.option("--interleave", type=click.Choice(INTERLEAVES),
              help="A/B runs: samples = each round's workers of the environments run side by side and take "
                   "turns on the cores sample by sample, so both see the same drift of the machine [default]; "
                   "rounds = one after the other.")
@click.option("--memory-limit", type=Number(1, MAX_MEMORY_LIMIT_MB),
              help="Kill a worker above this RSS (MB): status oom.")
@click.option("--seed", type=Number(0, MAX_SEED, integer=True), default=None,
              help="Seed of inputs and weights (default: the suite's).")
@click.option("--report", "make_report", is_flag=True, help="Also write an HTML report into OUTPUT/report.")
@click.option("--calibrate", is_flag=True, help="Measure the machine's matmul peak first (for GFLOP/s fractions).")
@click.option("--skip-missing-cores", is_flag=True,
              help="With --resume where fewer cores are available than the run planned: record the cases that "
                   "need more as unavailable (saying why) and finish the rest here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or table.")
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
              help="local: this machine; ray: the nodes of a Ray cluster (pip install 'dlbench[ray]').")
@click.option("--address", help="Ray cluster to use: auto or HOST:PORT of its head [auto].")
@click.option("--placement", type=click.Choice(PLACEMENTS),
              help="spread: each case once, on any matching node [default]; each-node: every case on every node.")
def command(suite: str, frameworks: tuple[tuple[str, ...], ...], workloads: tuple[tuple[str, ...], ...],
            passes: tuple[tuple[str, ...], ...], variants: tuple[tuple[str, ...], ...],
            devices: tuple[tuple[str, ...], ...], threads: tuple[tuple[int, ...], ...],
            batch_sizes: tuple[tuple[int, ...], ...], precisions: tuple[tuple[str, ...], ...],
            convs: tuple[tuple[str, ...], ...], output: Path | None, resume: Path | None,
            timeout: float | None, max_time: float | None, min_samples: int | None, repeat: int | None,
            control: bool | None, pythons: tuple[str, ...], interleave: str | None, memory_limit: float | None,
            seed: int | None,
            make_report: bool, calibrate: bool, skip_missing_cores: bool, quiet: bool, executor: str,
            address: str | None, placement: str | None, gpu: str | None) -> None:
    """Measure forward and gradient time and memory of the suite's cases.

    Exit codes: 0 every case ok (or unavailable here), 1 some case failed, crashed, timed out or ran out of
    memory (its row says why), 2 bad input, 130 interrupted (what was measured is saved; --resume finishes).
    """
    if executor == "local" and resume is None and (address is not None or placement is not None):
        raise DlbenchError("--address and --placement need --executor ray")
    if resume is not None and each_node_dirs(resume):
        finish_fleet_each_node(resume, output, address, quiet, make_report)
        return
    if resume is not None:
        refuse_changes_on_resume(click.get_current_context())
        store, cases = reopen(resume, output)
        try:
            if not is_fleet_config(store.record.config):  # a fleet's nodes check their own cores
                fit_to_cores(store, cases, len(available_cores()), skip_missing_cores, Shown(quiet))
        except BaseException:
            store.close()
            raise
    else:
        overrides = Overrides(
            frameworks=flatten(frameworks), workloads=flatten(workloads), passes=flatten(passes),
            variants=flatten(variants), devices=flatten(devices), threads=flatten(threads),
            batch_sizes=flatten(batch_sizes), precisions=flatten(precisions), convs=flatten(convs),
            measure=measure_overrides(max_time, min_samples, timeout, repeat), gpu=gpu or "")
        environments = parse_environments(pythons)
        if interleave is not None and len(environments) < 2:
            raise DlbenchError("--interleave orders the environments of an A/B run; give two or more --python")
        plan = make_plan(suite, overrides, fleet=executor == "ray")
        run_id = new_run_id()
        directory = output or Path("results") / run_id
        config = run_config(plan, seed, memory_limit, environments, control, interleave)
        record = RunRecord(run_id=run_id, created=now_iso(), config=config,
                           environment=msgspec.convert(environment.capture(plan.gpu_probes), Environment))
        options = None
        if executor == "ray":
            if environments or plan.suite.measure.repeats > 1:
                raise DlbenchError("--python and --repeat run on this machine; they do not combine with "
                                   "--executor ray")
            if calibrate:
                raise DlbenchError("--calibrate measures this machine; it does not combine with --executor ray")
            options = FleetOptions(address=address or "auto", placement=placement or SPREAD,
                                   resources=dict(plan.suite.resources))
            connect(options.address)  # before a run directory exists: a wrong address leaves nothing behind
            record.config = msgspec.structs.replace(record.config, executor=options.to_config())
        for note in plan.suite.notes:
            console.print(plain("note: ", "yellow") + plain(note))
        if options is not None and options.placement == EACH_NODE:
            start_fleet_each_node(directory, record, plan.cases, options, memory_limit, quiet, make_report)
            return
        store = RunStore.open(directory, record)
        cases = plan.cases
    memory = store.record.config.memory_limit_mb
    signal.signal(signal.SIGTERM, _terminate)  # from here on, calibration included, SIGTERM is a Ctrl-C
    try:
        if is_fleet_config(store.record.config):
            options = FleetOptions.from_config(store.record.config.executor, address)
            with Shown.bar(quiet, "fleet run") as progress:
                status = run_fleet({None: store}, store.record, options, cases, memory, progress)
        else:
            if placement is not None or executor != "local":
                raise DlbenchError(f"{store.directory} was run by the local executor; resume it without "
                                   "--executor, --address or --placement")
            with Shown.bar(quiet, f"run {store.record.run_id}") as progress:
                status = run_local(store, cases, progress, calibrate_first=calibrate)
    finally:
        store.close()
    finish([store], status, quiet, make_report, store.directory)


def finish(stores: list[RunStore], status: str, quiet: bool, make_report: bool, directory: Path) -> None:
    """Print the summary of each run written (one per node for each-node), then exit with the run's code."""
    results = [r for store in stores for r in store.record.results]
    for store in stores:
        if not quiet and store.record.results:
            out.print(summary_table(store.record.results, title=f"dlbench run {store.record.run_id}"))
            algorithms = conv_summary_table(store.record.results)
            if algorithms is not None:
                out.print(algorithms)
        # soft_wrap: the paths are printed whole, however narrow the terminal, so they can be copied
        console.print(plain(f"results: {store.directory / 'results.csv'}  "
                            f"(run record: {store.directory / 'run.json'})"), soft_wrap=True)
    if make_report:
        write_report(directory, [s.directory for s in stores])
    if status == "interrupted":
        console.print(plain("interrupted", "yellow") + plain(f": finish with dlbench run --resume {directory}"),
                      soft_wrap=True)
        sys.exit(EXIT_INTERRUPTED)
    failed = [r for r in results if r.status in FAILURES]
    if failed:
        console.print(plain(f"{len(failed)} case(s) did not finish ok", "red")
                      + plain(" (see the status and error columns)"))
        sys.exit(1)


# What a run's record fixes: on --resume these options would change the run, so they are refused.
FIXED_ON_RESUME = ("suite", "frameworks", "workloads", "passes", "variants", "devices", "threads", "batch_sizes",
                   "timeout", "max_time", "min_samples", "memory_limit", "seed", "repeat", "pythons", "control", "gpu",
                   "interleave", "precisions", "convs")


def refuse_changes_on_resume(ctx: click.Context) -> None:
    """A resumed run keeps its recorded configuration, so that it ends as one run with every case once.
    Options that would change it are refused rather than silently ignored."""
    given = [param.opts[0] for param in ctx.command.params
             if param.name in FIXED_ON_RESUME
             and ctx.get_parameter_source(param.name) not in (None, ParameterSource.DEFAULT)]
    if given:
        raise DlbenchError(
            f"--resume finishes a run with the configuration it recorded; {', '.join(given)} cannot change it "
            "(start a new run with --output for other settings)")


@dataclass
class Shown:
    """What a run reports (:class:`dlbench.runner.session.Progress`), drawn: the progress bar (its total is
    known once the plan, or the fleet's nodes, say it), notes, and the steps outside the cases."""

    quiet: bool
    progress: Progress | None = None
    task: TaskID | None = None

    @classmethod
    @contextmanager
    def bar(cls, quiet: bool, label: str) -> Iterator[Shown]:
        with progress_bar(quiet) as bar:
            yield cls(quiet, bar, bar.add_task(label, total=None, last=""))

    def total(self, cases: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, total=cases)

    def result(self, result: CaseResult) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, advance=1, last=describe(result))

    def note(self, text: str) -> None:
        console.print(plain("note: ", "yellow") + plain(text))

    def step(self, text: str) -> None:
        if not self.quiet:
            console.print(plain(text))


def start_fleet_each_node(directory: Path, record: RunRecord, cases: list[Case], options: FleetOptions,
                          memory_limit: float | None, quiet: bool, make_report: bool) -> None:
    """each-node: one run directory per node under ``directory``, made as the nodes join."""
    if directory.exists() and any(directory.iterdir()):
        raise DlbenchError(f"{directory} is not empty; an each-node run needs a new --output directory")
    stores: dict[str | None, RunStore] = {}
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with Shown.bar(quiet, "fleet run") as progress:
            status = run_fleet(stores, record, options, cases, memory_limit, progress,
                               new_node_store=each_node_factory(directory, record))
    finally:
        for store in stores.values():
            store.close()
    finish(list(stores.values()), status, quiet, make_report, directory)


def finish_fleet_each_node(directory: Path, output: Path | None, address: str | None, quiet: bool,
                           make_report: bool) -> None:
    """--resume of an each-node run: every node run that is missing cases, on its node."""
    if output is not None and output.resolve() != directory.resolve():
        raise DlbenchError("--resume and --output name different directories")
    stores, template = reopen_each_node(directory)
    cases = list(template.config.cases)
    options = FleetOptions.from_config(template.config.executor, address)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with Shown.bar(quiet, "fleet run") as progress:
            status = run_fleet(stores, template, options, cases, template.config.memory_limit_mb, progress)
    finally:
        for store in stores.values():
            store.close()
    finish(list(stores.values()), status, quiet, make_report, directory)


def write_report(directory: Path, runs: list[Path]) -> None:
    from dlbench.report import build_report

    index = build_report(runs, directory / "report")
    console.print(plain(f"report: {index}"), soft_wrap=True)
