"""The drift control: measured once per round, compared between runs, optionally normalised away."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

from dlbench.errors import DlbenchError
from dlbench.measure.bandwidth import measure_bandwidth
from dlbench.measure.timing import MeasureConfig
from dlbench.record.results import CaseResult
from dlbench.record.schema import ControlReading
from dlbench.record.store import RunRecord, RunStore
from dlbench.regress.normalize import fitting_kernel, ridge_point
from dlbench.regress.verdict import REGRESSED, UNCHANGED, Policy, compare_runs
from dlbench.runner.drift import COMPUTE, MEMORY
from dlbench.runner.schedule import RunLoop
from tests.record_fixtures import config
from tests.regress_fixtures import make_case, make_result, make_run
from tests.rounds_model import draw_rounds
from tests.unit.test_rounds_runner import CASES, RecordingExecutor


def with_rounds(rounds: list[list[float]]) -> CaseResult:
    result = make_result(samples=rounds[0])
    for more in rounds[1:]:
        result = result.add_round(make_result(samples=more))
    return result


def run_with_control(run_id: str, median: float, gflops: float, seed: int) -> RunRecord:
    rng = np.random.default_rng(seed)
    record = make_run(run_id, [with_rounds(draw_rounds(rng, 4, median, 0.005))])
    readings = tuple(ControlReading(round=r, kernel="matmul", gflops=gflops * (1 + 0.002 * r)) for r in (1, 2, 3, 4))
    record.environment = msgspec.structs.replace(record.environment, control=readings)
    return record


def test_a_machine_that_slowed_down_is_reported_marked_and_can_be_normalised() -> None:
    base = run_with_control("base", 10.0, 50.0, 1)
    cur = run_with_control("cur", 11.0, 45.0, 2)  # the machine is 10% slower, and so is the case
    plain = compare_runs(base, cur, Policy())
    assert plain.control_shift == pytest.approx(-0.10, abs=1e-3)
    assert any("machine changed between the runs" in w and "10.0% slower" in w for w in plain.warnings)
    case = plain.cases[0]
    assert case.verdict == REGRESSED and "measured on a changed machine (control -10.0%)" in case.notes
    normalised = compare_runs(base, cur, Policy(normalize_control=True))
    assert normalised.cases[0].verdict == UNCHANGED
    assert normalised.cases[0].timing is not None
    assert normalised.cases[0].timing.ratio == pytest.approx(1.0, abs=0.02)


def test_a_steady_machine_is_not_marked() -> None:
    comparison = compare_runs(run_with_control("a", 10.0, 50.0, 1), run_with_control("b", 10.0, 50.5, 2), Policy())
    assert comparison.control_shift == pytest.approx(0.01, abs=1e-3)
    assert not comparison.warnings and not any("changed machine" in n for n in comparison.cases[0].notes)


def test_normalising_needs_the_control_in_both_runs() -> None:
    base = run_with_control("a", 10.0, 50.0, 1)
    base.environment = msgspec.structs.replace(base.environment, control=())
    with pytest.raises(DlbenchError, match="needs the control in both runs"):
        compare_runs(base, run_with_control("b", 10.0, 50.0, 2), Policy(normalize_control=True))
    assert compare_runs(base, run_with_control("b", 10.0, 50.0, 2), Policy()).control_shift is None


def test_the_control_runs_once_at_the_start_of_every_round(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path / "run", RunRecord(run_id="r", created="now", config=config(CASES)))
    launches: list[tuple[str, str, tuple[str, ...]]] = []
    calls: list[tuple[int, int]] = []

    def control(round_number: int) -> ControlReading:
        calls.append((round_number, len(launches)))
        return ControlReading(round=round_number, kernel="matmul", gflops=40.0)

    executors = {"base": RecordingExecutor("base", launches), "head": RecordingExecutor("head", launches)}
    RunLoop(store=store, executors=executors,  # type: ignore[arg-type]
            config=config(CASES, measure=MeasureConfig(repeats=3)), control=control).run(CASES)
    assert calls == [(1, 0), (2, 4), (3, 8)]  # before the 4 launches (2 groups x 2 environments) of each round
    assert [e.round for e in store.record.environment.control] == [1, 2, 3]
    store.close()


def _case_run(run_id: str, gflops: float, gbps: float, medians: dict[str, float], seed: int) -> RunRecord:
    """Two cases: a memory-bound one (a LeNet forward at batch 1 whose working set is 500 MiB: far below
    the ridge point) and a compute-bound one (the same pass with a 1 MiB working set)."""
    rng = np.random.default_rng(seed)
    results = []
    for batch, rise in ((1, 500.0), (2, 1.0)):
        rounds = draw_rounds(rng, 4, medians[f"b{batch}"], 0.005)
        result = make_result(case=make_case(batch_size=batch), samples=rounds[0], rise_mib=rise)
        for more in rounds[1:]:
            result = result.add_round(make_result(samples=more))
        results.append(result)
    record = make_run(run_id, results)
    readings = tuple(ControlReading(round=r, kernel="matmul", gflops=gflops, gbps=gbps) for r in (1, 2, 3, 4))
    record.environment = msgspec.structs.replace(record.environment, control=readings)
    return record


def test_normalising_uses_the_memory_kernel_for_cases_below_the_ridge_point() -> None:
    """The machine's memory got 20% slower, its cores did not: the memory-bound case slowed by 20% too and
    is normalised by the copy kernel; the compute-bound case is judged by the (unmoved) matmul, so its own
    real 20% slow-down stays a regression."""
    base = _case_run("base", 50.0, 10.0, {"b1": 10.0, "b2": 10.0}, 1)
    cur = _case_run("cur", 50.0, 8.0, {"b1": 12.5, "b2": 12.5}, 2)
    ridge = ridge_point(base)
    assert ridge == pytest.approx(5.0)
    memory_bound, compute_bound = base.results
    assert fitting_kernel(memory_bound, ridge) == MEMORY and fitting_kernel(compute_bound, ridge) == COMPUTE
    assert fitting_kernel(compute_bound, None) == COMPUTE  # no memory kernel in a run: the matmul
    plain = compare_runs(base, cur, Policy())
    assert plain.memory_control_shift == pytest.approx(-0.2) and plain.control_shift == pytest.approx(0.0)
    assert any("memory copy control kernel ran 20.0% slower" in w for w in plain.warnings)
    by_batch = {c.case.batch_size: c for c in plain.cases}
    assert "measured on a changed machine (control memory copy -20.0%)" in by_batch[1].notes
    assert not any("changed machine" in n for n in by_batch[2].notes)
    normalised = {c.case.batch_size: c for c in compare_runs(base, cur, Policy(normalize_control=True)).cases}
    assert normalised[1].verdict == UNCHANGED and normalised[2].verdict == REGRESSED


def test_the_memory_kernel_runs_in_a_pinned_child() -> None:
    entry = measure_bandwidth({"warmup_s": 0.01, "min_block_s": 0.005, "min_samples": 3, "max_samples": 5,
                               "min_time_s": 0.02, "max_time_s": 0.2, "target_rel_ci": 0.5}, mib=8)
    assert entry["gbps"] > 0 and entry["mib"] == 8 and entry["n_samples"] >= 3
    assert len(entry["cores"]) == 1
