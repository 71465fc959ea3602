"""One local run from its plan to its stored record: the run's configuration, calibration, the run loop,
resume; the command line only parses options and draws what this module reports.

The fleet (:mod:`dlbench.fleet.sweep`) is the counterpart behind the same seam: both take a
:class:`~dlbench.record.store.RunStore`, the cases to run and a :class:`Progress`, store every result the
moment it exists and return the run's status (complete or interrupted). What a run shows is reported here and
drawn by the caller, so that nothing below the command line prints.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec

from dlbench.cases.spec import Case
from dlbench.errors import DlbenchError, validation_message
from dlbench.frameworks.registry import get_adapter
from dlbench.measure.calibrate import LOW_PRECISION_DTYPES, calibrate, calibrate_gpu
from dlbench.plan.planner import Plan
from dlbench.record.results import UNAVAILABLE, CaseResult, failed_result
from dlbench.record.schema import ROUNDS, SAMPLES, Calibration, PythonEnvironment, RunConfig
from dlbench.record.store import RunStore
from dlbench.runner.drift import measure_control
from dlbench.runner.executor import Executor, LocalExecutor
from dlbench.runner.schedule import RunLoop
from dlbench.workloads import select_phases
from dlbench.workloads.keras_models import is_keras_entry

COMPLETE, INTERRUPTED = "complete", "interrupted"
ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


class Progress(Protocol):
    """What a run shows while it runs (the command line draws it; the runner and the fleet only report)."""

    def total(self, cases: int) -> None:
        """The number of cases to run, once it is known."""

    def result(self, result: CaseResult) -> None:
        """A case finished (its result is already stored)."""

    def note(self, text: str) -> None:
        """Something the user should know that does not stop the run."""

    def step(self, text: str) -> None:
        """What the run is doing now, outside the cases (e.g. calibrating); quiet runs may drop it."""


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def parse_environments(specs: tuple[str, ...]) -> tuple[PythonEnvironment, ...]:
    """``--python NAME=PATH`` options, in the order given; a one-line error for anything wrong."""
    found: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        name = name.strip()
        if not sep or not path:
            raise DlbenchError(f"bad --python {spec!r}: write NAME=/path/to/python, e.g. base=venvA/bin/python")
        if not ENV_NAME.match(name):
            raise DlbenchError(f"bad --python name {name!r}: letters, digits, '_', '.', '-' (at most 32)")
        if name in found:
            raise DlbenchError(f"--python {name!r} is given twice")
        resolved = shutil.which(path) if os.sep not in path else path
        if resolved is None or not os.path.isfile(resolved) or not os.access(resolved, os.X_OK):
            raise DlbenchError(f"--python {name}: {path!r} is not an executable file")
        found[name] = os.path.abspath(resolved)
    return tuple(PythonEnvironment(name=name, python=python) for name, python in found.items())


def run_config(plan: Plan, seed: int | None, memory_limit_mb: float | None,
               environments: tuple[PythonEnvironment, ...] = (), control: bool | None = None,
               interleave: str | None = None) -> RunConfig:
    """The configuration of a fresh run: the planned cases and the settings every worker job gets; the
    drift control is on by default with two rounds or more, and the environments of an A/B run take turns
    sample by sample unless told otherwise."""
    measure = plan.suite.measure
    return RunConfig(
        suite=plan.suite.record(), cases=tuple(plan.cases), measure=measure,
        seed=plan.suite.seed if seed is None else seed, memory_limit_mb=memory_limit_mb,
        default_variants={fw: get_adapter(fw).default_variant for fw in plan.frameworks},
        environments=environments, control=measure.repeats > 1 if control is None else control,
        command=tuple(sys.argv[1:]), interleave=interleave or (SAMPLES if len(environments) > 1 else ROUNDS),
    )


def reopen(directory: Path, output: Path | None) -> tuple[RunStore, list[Case]]:
    """The stored run to finish and its planned cases; its configuration (settings, seed, memory limit) is
    the one it started with."""
    if output is not None and output.resolve() != directory.resolve():
        raise DlbenchError("--resume and --output name different directories")
    store = RunStore.open(directory, resume=True)
    cases = list(store.record.config.cases)
    if not cases:
        store.close()
        raise DlbenchError(f"{directory}/run.json lists no planned cases; cannot resume it")
    try:
        for entry in store.record.config.suite.workloads:  # the Keras models it ran (keras:lenet=pkg.mod:fn)
            if is_keras_entry(entry):
                select_phases(entry)
    except DlbenchError:
        store.close()
        raise
    return store, cases


def fit_to_cores(store: RunStore, cases: Sequence[Case], cores: int, skip: bool, progress: Progress) -> None:
    """A resume where fewer cores are available than pending cases need (another machine, a smaller CPU
    set): refused, or with ``skip`` those cases are stored as unavailable with the reason, so the rest can
    be finished here and the record says what happened."""
    done = store.done_keys()
    too_wide = [c for c in cases if c.key not in done and c.threads > cores]
    if not too_wide:
        return
    widest = max(c.threads for c in too_wide)
    if not skip:
        raise DlbenchError(
            f"{len(too_wide)} pending case(s) of this run need up to {widest} cores, but {cores} are available "
            f"here; resume it where {widest} are, or add --skip-missing-cores to record those cases as "
            "unavailable and finish the rest here")
    for case in too_wide:
        store.add(failed_result(case, UNAVAILABLE, f"not measured: needs {case.threads} cores; resumed with "
                                f"--skip-missing-cores where {cores} were available"))
    progress.note(f"{len(too_wide)} case(s) needing more than {cores} cores recorded as unavailable")


def execute(store: RunStore, cases: Sequence[Case], memory_limit: float | None, progress: Progress) -> str:
    """Run what is pending on this machine; returns the run's final status (complete or interrupted)."""
    config = store.record.config
    executors: dict[str, Executor] = {
        e.name: LocalExecutor(memory_limit_mb=memory_limit, python=e.python) for e in config.environments
    } or {"": LocalExecutor(memory_limit_mb=memory_limit, python=sys.executable)}  # "": this interpreter
    loop = RunLoop(store=store, executors=executors, config=config,
                   control=measure_control if config.control else None)
    progress.total(loop.pending_count(list(cases)))
    loop.on_result = progress.result
    try:
        loop.run(list(cases))
    except KeyboardInterrupt:
        store.finish(INTERRUPTED)
        return INTERRUPTED
    store.finish(COMPLETE)
    return COMPLETE


def run_calibration(store: RunStore, threads: list[int], progress: Progress, precisions: list[str] | None = None,
                    gpu_precisions: list[str] | None = None) -> str:
    """Calibrate into the run's environment: the float32 peak always, the peak of every low precision the
    run has on the CPU, and the GPU's peak of every precision the run has on the GPU; "interrupted" (and the
    run marked so) on Ctrl-C or SIGTERM."""
    progress.step(f"calibrating float32 matmul peak for threads {threads} ...")
    try:
        calibration = typed_calibration(calibrate(threads))
        store.set_environment(msgspec.structs.replace(store.record.environment, calibration=calibration))
        for precision in [p for p in precisions or [] if p in LOW_PRECISION_DTYPES]:
            progress.step(f"calibrating {precision} matmul peak for threads {threads} ...")
            try:
                measured = calibrate(threads, precision=precision)
            except DlbenchError as exc:  # e.g. no PyTorch to time bf16 with: the run itself still goes on
                progress.note(f"no {precision} peak: {exc}")
                continue
            environment = store.record.environment
            peaks = {**environment.calibration_precisions, precision: typed_calibration(measured)}
            store.set_environment(msgspec.structs.replace(environment, calibration_precisions=peaks))
        if gpu_precisions:
            progress.step(f"calibrating the GPU's matmul peak for {', '.join(gpu_precisions)} ...")
            try:
                measured_gpu = calibrate_gpu(gpu_precisions)
                store.set_environment(msgspec.structs.replace(store.record.environment,
                                                              calibration_gpu=measured_gpu))
            except DlbenchError as exc:  # the run itself still goes on, without a GPU "% of peak"
                progress.note(f"no GPU peak: {exc}")
    except KeyboardInterrupt:  # the calibration child is already killed (the process kit's Child saw to it)
        store.finish(INTERRUPTED)
        return INTERRUPTED
    return COMPLETE


def run_local(store: RunStore, cases: Sequence[Case], progress: Progress, calibrate_first: bool = False) -> str:
    """Calibrate if asked, then run what is pending; returns complete or interrupted."""
    status = COMPLETE
    if calibrate_first:
        status = run_calibration(store, sorted({c.threads for c in cases}), progress,
                                 sorted({c.precision for c in cases if c.device == "cpu"}),
                                 sorted({c.precision for c in cases if c.device == "gpu"}))
    if status != INTERRUPTED:
        status = execute(store, cases, store.record.config.memory_limit_mb, progress)
    return status


def typed_calibration(measured: dict[int, dict[str, Any]]) -> dict[int, Calibration]:
    try:
        return msgspec.convert(measured, dict[int, Calibration])
    except msgspec.ValidationError as exc:
        raise DlbenchError(f"calibration gave an invalid result: {validation_message(exc)}") from None
