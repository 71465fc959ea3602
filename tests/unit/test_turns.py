"""Workers that take turns on the same cores (``--interleave samples``, the default of an A/B run).

The arbiter and the timing loop are tested in process; the CLI tests run two environments' workers of the
fake adapter side by side.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dlbench.cases.spec import WorkerKey
from dlbench.measure.timing import MeasureConfig, measure
from dlbench.process.placement import cores_for
from dlbench.process.turns import CONTINUE, STOP, Turns
from dlbench.record.results import CaseResult
from dlbench.runner.executor import LocalExecutor, SideBySide, run_side_by_side
from dlbench.runner.protocol import WorkerJob
from dlbench.statistics.significance import (
    ROUND_SAMPLE_PAIRED_MODERATED_T,
    ROUND_SAMPLE_PAIRED_T,
    round_contrast,
    rounds_change,
    sample_paired_log_ratios,
)
from tests.conftest import ROOT, assert_one_line_error, run_cli, wait_for_results
from tests.regress_fixtures import make_case


class Member:
    """A ring member that remembers the signals it was given."""

    def __init__(self, name: str, log: list[tuple[str, bytes]]) -> None:
        self.name = name
        self.log = log

    def give_turn(self, signal: bytes = CONTINUE) -> None:
        self.log.append((self.name, signal))


def test_the_turn_goes_round_the_ring_and_skips_members_that_left() -> None:
    log: list[tuple[str, bytes]] = []
    a, b, c = (Member(n, log) for n in "abc")
    turns = Turns()
    turns.join(a)  # alone: runs at once
    turns.join(b)
    turns.join(c)  # the turn is a's: the others wait
    assert [n for n, _ in log] == ["a"]
    turns.yielded(b)  # b does not hold the turn: nothing happens
    assert [n for n, _ in log] == ["a"]
    for member in (a, b, c, a):
        turns.yielded(member)
    assert [n for n, _ in log] == ["a", "b", "c", "a", "b"]
    turns.leave(b)  # b held the turn: it passes on, to c
    turns.leave(a)  # a waits: nothing is handed out
    assert [n for n, _ in log] == ["a", "b", "c", "a", "b", "c"]
    turns.yielded(c)  # alone again: it gets the turn straight back
    assert turns.holder is c and [n for n, _ in log][-1] == "c"
    turns.leave(c)
    assert turns.holder is None and turns.given == 7


def test_the_first_turn_waits_for_every_member_and_goes_to_the_first_rank() -> None:
    """No member runs alone while the others are still starting; the ring's order is the ranks'."""
    log: list[tuple[str, bytes]] = []
    a, b, c = (Member(n, log) for n in "abc")
    turns = Turns(expected=3)
    turns.join(c, rank=2)
    turns.join(a, rank=0)
    assert log == [] and turns.holder is None
    turns.join(b, rank=1)
    assert turns.holder is a
    for member in (a, b, c):
        turns.yielded(member)
    assert [n for n, _ in log] == ["a", "b", "c", "a"]


def test_stop_is_signalled_only_once_every_member_on_the_topic_is_ready() -> None:
    log: list[tuple[str, bytes]] = []
    a, b, c = (Member(n, log) for n in "abc")
    turns = Turns()
    for member in (a, b, c):
        turns.join(member)
    turns.yielded(a, "case1", ready=True)  # a is ready, b has not said: b continues
    turns.yielded(b, "case1", ready=False)
    turns.yielded(c, "case0", ready=False)  # c is behind, on another case: it holds nobody back ...
    assert log[-1] == ("a", CONTINUE)  # ... but b, on a's case, is not ready yet
    turns.yielded(a, "case1", ready=True)
    assert log[-1] == ("b", CONTINUE)  # b was not ready when it yielded
    turns.yielded(b, "case1", ready=True)
    assert log[-1] == ("c", CONTINUE)
    turns.yielded(c, "case0", ready=True)  # alone on its case
    assert log[-1] == ("a", STOP)  # a and b are both ready on case1
    turns.yielded(a, "case2", ready=False)  # a moved on
    assert log[-1] == ("b", STOP)


def test_time_spent_letting_others_run_is_not_the_cases_own() -> None:
    """The sampling budget counts the case's own time: a turn of the others between samples (here 10 s
    on a fake clock, beyond the whole max_time) neither ends sampling early nor counts as CPU time."""
    now = [0]
    asked: list[bool] = []

    def clock() -> int:
        now[0] += 1_000_000  # every reading of the clock is 1 ms later
        return now[0]

    def others_run(ready: bool) -> bool:
        asked.append(ready)
        now[0] += 10 * 10**9
        return ready and len(asked) >= 9  # the partner is ready only after nine samples

    config = MeasureConfig(warmup_s=0.0, min_block_s=0.0, min_samples=3, max_samples=50, min_time_s=0.0,
                           max_time_s=1.0, target_rel_ci=1.0)
    timing = measure(lambda: (lambda: None), lambda _: None, config, clock=clock, cpu_clock=lambda: 0.0,
                     between_samples=others_run)
    assert len(timing.samples_ms) == 9  # it waited for the partner, although its own rule was satisfied at 3
    assert asked[:2] == [False, False] and all(asked[2:])
    assert timing.cpu_per_wall == 0.0


def test_the_budget_ends_sampling_without_asking_the_others() -> None:
    asked: list[bool] = []
    config = MeasureConfig(warmup_s=0.0, min_block_s=0.0, min_samples=3, max_samples=5, min_time_s=0.0,
                           max_time_s=100.0, target_rel_ci=1e-9)
    timing = measure(lambda: (lambda: None), lambda _: None, config,
                     between_samples=lambda ready: asked.append(ready) or False)
    assert len(timing.samples_ms) == 5 and len(asked) == 4  # the fifth sample spent the budget


FAST = ("--suite", "smoke", "--framework", "fake", "--device", "cpu", "--workload", "lenet", "--quiet",
        "--max-time", "0.3", "--min-samples", "3")


def wrapper(directory: Path, name: str, **env: str) -> str:
    """An interpreter that runs this Python with extra environment variables (an environment of its own)."""
    path = directory / name
    exports = "".join(f"{key}='{value}' " for key, value in env.items())
    path.write_text(f"#!/bin/sh\n{exports}exec \"{sys.executable}\" \"$@\"\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def by_environment(out: Path) -> dict[str, dict[str, dict]]:  # type: ignore[type-arg]
    results = json.loads((out / "run.json").read_text())["results"]
    table: dict[str, dict[str, dict]] = {}  # type: ignore[type-arg]
    for result in results:
        key = "/".join(str(result["case"][f]) for f in ("workload", "pass"))
        table.setdefault(key, {})[result["environment"]] = result
    return table


def test_an_ab_run_samples_both_environments_side_by_side_by_default(tmp_path: Path) -> None:
    out = tmp_path / "ab"
    proc = run_cli("run", *FAST, "--repeat", "2", "--python", f"base={sys.executable}",
                   "--python", f"head={sys.executable}", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "run.json").read_text())["config"]["interleave"] == "samples"
    for key, sides in by_environment(out).items():
        base, head = sides["base"], sides["head"]
        assert base["status"] == head["status"] == "ok"
        # they stopped together: as many samples in every round, taken in alternation (one more on one side
        # where the other's time budget, --max-time, ran out first and it left alone)
        for base_round, head_round in zip(base["rounds"], head["rounds"], strict=True):
            assert abs(base_round["n"] - head_round["n"]) <= 1, key


def test_side_by_side_workers_alternate_sample_by_sample() -> None:
    """Two workers of the fake adapter on the same core: both are alive at once, each case of one side
    is measured while the same case of the other side is (its span overlaps), and the turn changed hands
    about twice per sample."""
    cases = (make_case("lenet", framework="fake", batch_size=2), make_case("lstm", framework="fake", batch_size=2))
    config = MeasureConfig(warmup_s=0.01, min_block_s=0.005, min_samples=5, max_samples=8, min_time_s=0.0,
                           max_time_s=5.0, target_rel_ci=1.0)
    job = WorkerJob(key=WorkerKey.of(cases[0]), cores=cores_for(1), cases=cases, measure=config)
    events: list[tuple[str, str, float]] = []
    results: dict[str, list[CaseResult]] = {"base": [], "head": []}

    def side(name: str) -> SideBySide:
        trace = lambda event, worker, when, pid: events.append((name, event, when))  # noqa: E731
        return (LocalExecutor(trace=trace), job, results[name].append, lambda worker, info: None)

    given = run_side_by_side([side("base"), side("head")])
    for name in ("base", "head"):
        assert [r.status for r in results[name]] == ["ok", "ok"]
    # stopped together: as many samples on both sides (5 when both rules are satisfied at 5; more when an
    # outlier on a loaded machine keeps one side's interval too wide, and then one more on the side whose
    # budget of 8 samples ended it first, which the sample pairs leave out)
    for base, head in zip(results["base"], results["head"], strict=True):
        assert abs(len(base.samples_ms) - len(head.samples_ms)) <= 1
    starts = {name: [t for n, e, t in events if n == name and e == "start"] for name in results}
    ends = {name: [t for n, e, t in events if n == name and e == "result"] for name in results}
    for case in range(2):
        assert starts["head"][case] < ends["base"][case] and starts["base"][case] < ends["head"][case]
    assert given >= 2 * 2 * 4  # 2 cases x 2 sides x 4 yields (after each sample but the last)


def test_no_side_starts_its_next_case_before_the_others_have_finished_theirs() -> None:
    """The turn goes round once more between two cases: the sides told to stop along with one another all
    finish the case before any of them builds its next one. Without it the first side to be told would build
    (and, for a case that hangs or compiles for minutes, keep the turn through) its next case while the other
    side waited to be told, its result held back until that next case ended or timed out."""
    cases = (make_case("lenet", framework="fake", batch_size=2), make_case("lstm", framework="fake", batch_size=2),
             make_case("autoencoder", framework="fake", batch_size=2, phase="pretrain1"))
    config = MeasureConfig(warmup_s=0.01, min_block_s=0.005, min_samples=3, max_samples=6, min_time_s=0.0,
                           max_time_s=5.0, target_rel_ci=1.0)
    job = WorkerJob(key=WorkerKey.of(cases[0]), cores=cores_for(1), cases=cases, measure=config)
    events: list[tuple[str, str, float]] = []
    results: dict[str, list[CaseResult]] = {"base": [], "head": []}

    def side(name: str) -> SideBySide:
        trace = lambda event, worker, when, pid: events.append((name, event, when))  # noqa: E731
        return (LocalExecutor(trace=trace), job, results[name].append, lambda worker, info: None)

    run_side_by_side([side("base"), side("head")])
    starts = {name: [t for n, e, t in events if n == name and e == "start"] for name in results}
    ends = {name: [t for n, e, t in events if n == name and e == "result"] for name in results}
    for this, other in (("base", "head"), ("head", "base")):
        for case in range(len(cases) - 1):
            assert ends[other][case] < starts[this][case + 1], (this, case)


def test_sample_pairs_cancel_a_drift_that_the_round_medians_keep() -> None:
    """Each sample pair shares the machine's state of its moment: the drift cancels in the pair's ratio,
    whatever it is, and a sample one side took alone (its budget lasted longer) is left out."""
    rng = np.random.default_rng(7)
    base_rounds, cur_rounds = [], []
    for _ in range(3):
        drift = np.exp(rng.normal(0.0, 0.3, size=12))  # the machine's speed, sample by sample: +-30%
        base_rounds.append(list(drift))
        cur_rounds.append(list(1.1 * drift) + [9.9])  # 10% slower, and one sample more
    ratios = sample_paired_log_ratios(base_rounds, cur_rounds)
    assert np.allclose(ratios, np.log(1.1))
    by_medians = round_contrast(base_rounds, cur_rounds, paired=True)
    by_pairs = round_contrast(base_rounds, cur_rounds, paired=True, by_sample=True)
    assert by_pairs.variance < 1e-20 < by_medians.variance
    change = rounds_change(base_rounds, cur_rounds, alpha=0.01, paired=True, by_sample=True)
    assert change.method == ROUND_SAMPLE_PAIRED_T and change.significant and change.ratio == pytest.approx(1.1)


def test_compare_within_pairs_the_samples_of_a_run_that_took_turns(tmp_path: Path) -> None:
    out = tmp_path / "ab"
    proc = run_cli("run", *FAST, "--repeat", "2", "--python", f"base={sys.executable}",
                   "--python", f"head={sys.executable}", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("compare", "--within", str(out), "base", "head", "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    methods = {c["timing"]["method"] for c in json.loads(proc.stdout)["cases"]}
    assert methods <= {ROUND_SAMPLE_PAIRED_T, ROUND_SAMPLE_PAIRED_MODERATED_T} and methods
    table = run_cli("compare", "--within", str(out), "base", "head")
    assert "log ratios of sample pairs taken in turn" in " ".join(table.stdout.split())


def test_rounds_interleave_is_recorded_and_kept_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "ab"
    proc = run_cli("run", *FAST, "--python", f"base={sys.executable}", "--python", f"head={sys.executable}",
                   "--interleave", "rounds", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "run.json").read_text())["config"]["interleave"] == "rounds"
    # a resumed run keeps the order it recorded
    assert_one_line_error(run_cli("run", "--resume", str(out), "--interleave", "samples"), "cannot change it")


def test_a_crash_on_one_side_leaves_the_other_side_measured(tmp_path: Path) -> None:
    """The head's worker crashes in the gradient case: its replacement finishes the head's cases, and
    the base, which was taking turns with it, goes on alone without losing anything."""
    out = tmp_path / "ab"
    head = wrapper(tmp_path, "head-python", DLBENCH_FAKE_FAULTS="crash:lenet/-/gradient/*")
    proc = run_cli("run", *FAST, "--python", f"base={sys.executable}", "--python", f"head={head}",
                   "--output", str(out))
    assert proc.returncode == 1, proc.stderr
    table = by_environment(out)
    assert table["lenet/gradient"]["head"]["status"] == "crashed"
    assert all(table[key]["base"]["status"] == "ok" for key in table)
    assert table["lenet/forward"]["head"]["status"] == "ok"


def test_ctrl_c_interrupts_both_sides_and_resume_finishes_them(tmp_path: Path) -> None:
    out = tmp_path / "ab"
    head = wrapper(tmp_path, "head-python", DLBENCH_FAKE_FAULTS="hang:lenet/-/gradient/*")
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("DLBENCH_FAKE_FAULTS", None)
    proc = subprocess.Popen([sys.executable, "-m", "dlbench", "run", *FAST, "--timeout", "120",
                             "--python", f"base={sys.executable}", "--python", f"head={head}",
                             "--output", str(out)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_results(out, 2)  # both forward passes done: head now hangs in gradient
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130  # generous for a loaded machine; exit takes well under a second
    finally:
        proc.kill()
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert {r["status"] for r in record["results"] if r["case"]["pass"] == "gradient"} <= {"interrupted", "ok"}
    Path(head).write_text(f"#!/bin/sh\nexec \"{sys.executable}\" \"$@\"\n")  # the hang is fixed
    resumed = run_cli("run", "--resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    results = json.loads((out / "run.json").read_text())["results"]
    assert len(results) == 4 and all(r["status"] == "ok" for r in results)


@pytest.mark.parametrize("args", [(), ("--python", f"base={sys.executable}")])
def test_interleave_needs_two_environments(args: tuple[str, ...], tmp_path: Path) -> None:
    proc = run_cli("run", *FAST, *args, "--interleave", "samples", "--output", str(tmp_path / "r"))
    assert_one_line_error(proc, "--interleave orders the environments of an A/B run")
