"""The drift control: measured once per round, compared between runs, optionally normalised away."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlbench.errors import DlbenchError
from dlbench.measure.timing import MeasureConfig
from dlbench.regress.verdict import REGRESSED, UNCHANGED, Policy, compare_runs
from dlbench.results import CaseResult
from dlbench.runner.schedule import RunLoop
from dlbench.store import RunRecord, RunStore
from tests.regress_fixtures import make_result, make_run
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
    record.environment["control"] = [{"round": r, "gflops": gflops * (1 + 0.002 * r)} for r in (1, 2, 3, 4)]
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
    base.environment.pop("control")
    with pytest.raises(DlbenchError, match="needs the control in both runs"):
        compare_runs(base, run_with_control("b", 10.0, 50.0, 2), Policy(normalize_control=True))
    assert compare_runs(base, run_with_control("b", 10.0, 50.0, 2), Policy()).control_shift is None


def test_the_control_runs_once_at_the_start_of_every_round(tmp_path: Path) -> None:
    store = RunStore.open(tmp_path / "run", RunRecord("r", "now", {}, {}, {}))
    launches: list[tuple[str, str, tuple[str, ...]]] = []
    calls: list[tuple[int, int]] = []

    def control(round_number: int) -> dict[str, float]:
        calls.append((round_number, len(launches)))
        return {"round": round_number, "gflops": 40.0}

    executors = {"base": RecordingExecutor("base", launches), "head": RecordingExecutor("head", launches)}
    RunLoop(store=store, executors=executors, measure=MeasureConfig(repeats=3),  # type: ignore[arg-type]
            control=control).run(CASES)
    assert calls == [(1, 0), (2, 4), (3, 8)]  # before the 4 launches (2 groups x 2 environments) of each round
    assert [e["round"] for e in store.record.environment["control"]] == [1, 2, 3]
    store.close()
