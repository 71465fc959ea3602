"""Workers started ahead of their turn (dlbench.process.gate): they import together while nothing is measured,
pin every thread to their cores, wait idle at their gate, and then measure one at a time as before."""

from __future__ import annotations

import os
import time
from typing import Any

import psutil
import pytest

from dlbench.cases.spec import WorkerKey
from dlbench.measure.timing import MeasureConfig
from dlbench.process.allocator import allocator_environment, allocator_setting
from dlbench.process.child import Child, ChildSpec, Ended
from dlbench.process.placement import cores_for, place
from dlbench.record.results import CaseResult
from dlbench.runner.executor import LocalExecutor, start_ahead
from dlbench.runner.protocol import WorkerJob
from tests.conftest import ROOT
from tests.kit_jobs import CODEC, Report, Threads
from tests.regress_fixtures import make_case

ALL_CORES = sorted(os.sched_getaffinity(0))
FIRST_CORE = ALL_CORES[0]
QUICK = MeasureConfig(warmup_s=0.01, min_block_s=0.005, min_samples=3, max_samples=5, min_time_s=0.0,
                      max_time_s=5.0, target_rel_ci=1.0)


def soon(seconds: float) -> float:
    return time.monotonic() + seconds


def test_a_gated_child_imports_unpinned_then_pins_every_thread_and_waits_for_its_gate() -> None:
    spec = ChildSpec(module="tests.kit_jobs", placement=place(1), codec=CODEC, env={"PYTHONPATH": str(ROOT)},
                     gate=True)
    with Child(spec, {"action": "gated"}) as child:
        before = child.receive(soon(60))
        assert isinstance(before, Threads) and len(before.masks) >= 2  # the main thread and the early one
        assert all(mask == ALL_CORES for mask in before.masks)  # the boot did not pin it
        after = child.receive(soon(60))
        assert isinstance(after, Threads) and len(after.masks) == len(before.masks)
        assert all(mask == [FIRST_CORE] for mask in after.masks)  # the early thread too, not the main one only
        assert child.receive(soon(0.5)) is Ended.TIMEOUT or child.killed_for is not None
    with Child(spec, {"action": "gated"}) as child:
        child.receive(soon(60))
        child.receive(soon(60))
        time.sleep(0.3)
        assert psutil.Process(child.pid).cpu_times().user < 5  # alive, waiting
        child.open_gate()
        through = child.receive(soon(60))
        assert through == Report([FIRST_CORE], "", "through the gate")


def fake_job(threads: int) -> WorkerJob:
    cases = (make_case("lenet", framework="fake", batch_size=2, threads=threads),
             make_case("lstm", framework="fake", batch_size=2, threads=threads))
    return WorkerJob(key=WorkerKey.of(cases[0]), cores=cores_for(threads), cases=cases, measure=QUICK)


@pytest.mark.skipif(len(ALL_CORES) < 2, reason="needs two cores for a two-thread worker")
def test_workers_started_ahead_import_together_and_measure_one_after_the_other() -> None:
    events: list[tuple[str, str, float]] = []
    results: list[CaseResult] = []
    runtimes: dict[str, dict[str, Any]] = {}

    def trace(event: str, worker: WorkerKey, when: float, pid: int) -> None:
        events.append((worker.label, event, when))

    executor = LocalExecutor(trace=trace)
    jobs = [fake_job(1), fake_job(2)]
    sinks = (results.append, lambda worker, info: runtimes.__setitem__(worker.label, info))
    workers = start_ahead([(executor, job, *sinks) for job in jobs])
    try:
        assert len(runtimes) == 2  # both imported and warmed up before any case
        for job, worker in zip(jobs, workers, strict=True):
            executor.run(job, *sinks, started=worker)
    finally:
        for worker in workers:
            worker.close()
    assert [r.status for r in results] == ["ok"] * 4
    assert [r.affinity for r in results] == [tuple(cores_for(1))] * 2 + [tuple(cores_for(2))] * 2
    names = [e for _, e, _ in events]
    # both spawned, both waiting at their gates, and only then the first case
    assert names[:6] == ["spawn", "spawn", "ready", "waiting", "ready", "waiting"], names
    first_start = next(t for _, e, t in events if e == "start")
    second_go = [t for label, e, t in events if e == "go" and label == jobs[1].key.label][0]
    last_result_of_first = [t for label, e, t in events if e == "result" and label == jobs[0].key.label][-1]
    assert max(t for _, e, t in events if e == "waiting") < first_start
    assert last_result_of_first < second_go  # one worker measures at a time
    for job in jobs:
        settings = runtimes[job.key.label]["settings"]
        assert settings["started"].startswith("ahead of its turn")
        pinned, _, total = settings["pinned"].partition(" of ")
        assert pinned == total.split()[0]  # every thread on the worker's cores
        assert settings["pinned"].endswith("cores " + ",".join(map(str, cores_for(job.threads))))
        # the C heap the placement gave it, as the worker itself read it from its environment
        assert settings["malloc"] == allocator_setting({**os.environ, **allocator_environment()})


def test_a_worker_that_fails_to_start_ahead_fails_its_own_cases_only() -> None:
    results: list[CaseResult] = []
    broken = LocalExecutor(extra_env={"DLBENCH_FAKE_FAULTS": "import:*"})
    fine = LocalExecutor()
    jobs = [fake_job(1), fake_job(1)]
    entries = [(broken, jobs[0], results.append, lambda w, i: None), (fine, jobs[1], results.append, lambda w, i: None)]
    workers = start_ahead(entries)
    try:
        for (executor, job, *_), worker in zip(entries, workers, strict=True):
            executor.run(job, results.append, lambda w, i: None, started=worker)
    finally:
        for worker in workers:
            worker.close()
    assert [r.status for r in results] == ["failed", "failed", "ok", "ok"]
    assert "failed to initialise" in (results[0].error or "")


def test_ctrl_c_while_workers_wait_ahead_leaves_no_process_behind(tmp_path: Any) -> None:
    from dlbench.record.store import RunRecord, RunStore
    from dlbench.runner.schedule import RunLoop
    from tests.record_fixtures import config as run_config

    cases = [make_case(w, framework="fake", batch_size=2, threads=t) for t in (1, 2) for w in ("lenet", "lstm")]
    if len(ALL_CORES) < 2:
        cases = [c for c in cases if c.threads == 1]
    config = run_config(cases, measure=QUICK)
    store = RunStore.open(tmp_path / "run", RunRecord(run_id="r", created="now", config=config))
    seen: list[int] = []

    def interrupt(result: CaseResult) -> None:
        seen.extend(p.pid for p in psutil.Process().children(recursive=True))
        raise KeyboardInterrupt

    loop = RunLoop(store=store, executors={"": LocalExecutor()}, config=config, on_result=interrupt)
    with pytest.raises(KeyboardInterrupt):
        loop.run(cases)
    store.close()
    assert len(seen) >= (2 if len(ALL_CORES) >= 2 else 1)  # the worker measuring and the one waiting ahead
    deadline = soon(10)
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in seen):
        assert time.monotonic() < deadline, "a worker outlived the interrupted run"
        time.sleep(0.1)
