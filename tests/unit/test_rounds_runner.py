"""Rounds (``--repeat``) and environments (``--python``) in the run loop and the CLI.

The loop tests use an in-process executor that records the order of worker launches, so they run in
milliseconds; the CLI tests launch real workers of the fake adapter.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest

from dlbench.measure.timing import MeasureConfig
from dlbench.record.results import CRASHED, INTERRUPTED, OK, CaseResult, failed_result
from dlbench.record.schema import PythonEnvironment
from dlbench.record.store import RunRecord, RunStore
from dlbench.runner.protocol import WorkerJob
from dlbench.runner.schedule import RunLoop, group_cases, interleave
from tests.conftest import run_cli
from tests.record_fixtures import config
from tests.regress_fixtures import make_case

CASES = [make_case("lenet", framework="torch"), make_case("lstm", framework="torch"),
         make_case("lenet", framework="jax")]


@dataclass
class RecordingExecutor:
    """Answers every case at once with samples that name the launch; remembers the launches."""

    name: str
    launches: list[tuple[str, str, tuple[str, ...]]]
    fail: set[tuple[str, int]] = field(default_factory=set)  # (key, launch number) that crash

    def run(self, job: WorkerJob, on_result, on_runtime) -> None:  # type: ignore[no-untyped-def]
        self.launches.append((self.name, job.framework, tuple(c.key for c in job.cases)))
        on_runtime(job.key, {"version": f"{self.name}-1.0"})
        number = len(self.launches)
        for case in job.cases:
            if (case.key, number) in self.fail:
                on_result(failed_result(case, CRASHED, "boom"))
            else:
                on_result(CaseResult(case=case, status=OK, samples_ms=(float(number),) * 3))


def make_store(tmp_path: Path) -> RunStore:
    environments = tuple(PythonEnvironment(name=name, python=f"/bin/{name}") for name in ("base", "head"))
    record = RunRecord(run_id="r", created="now", config=config(CASES, environments=environments))
    return RunStore.open(tmp_path / "run", record)


def loop(store: RunStore, repeats: int, launches: list[tuple[str, str, tuple[str, ...]]],
         names: tuple[str, ...] = ("base", "head"), **fail: set[tuple[str, int]]) -> RunLoop:
    executors = {n: RecordingExecutor(n, launches, fail.get(n, set())) for n in names}
    return RunLoop(store=store, executors=executors,  # type: ignore[arg-type]
                   config=config(CASES, measure=MeasureConfig(repeats=repeats)))


def test_rounds_are_interleaved_and_environments_alternate() -> None:
    groups = group_cases(CASES)
    steps = interleave(groups, ["base", "head"], 3)
    order = [(s.round, s.worker.framework, s.environment) for s in steps]
    assert order == [
        (1, "jax", "base"), (1, "jax", "head"), (1, "torch", "base"), (1, "torch", "head"),
        (2, "jax", "head"), (2, "jax", "base"), (2, "torch", "head"), (2, "torch", "base"),
        (3, "jax", "base"), (3, "jax", "head"), (3, "torch", "base"), (3, "torch", "head"),
    ]


def test_every_case_gets_one_round_per_worker_launch_in_each_environment(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    launches: list[tuple[str, str, tuple[str, ...]]] = []
    loop(store, 2, launches).run(CASES)
    assert len(launches) == 8  # 2 rounds x 2 groups x 2 environments, each a separate worker launch
    assert len(store.record.results) == 6  # 3 cases x 2 environments
    for result in store.record.results:
        assert result.ok and result.round_count == 2 and len(result.samples_ms) == 6
        assert result.environment in ("base", "head")
        first, second = (r[0] for r in result.round_samples())
        assert first < second  # the rounds are stored in the order they ran
    assert store.record.framework_versions("head") == {"torch": "head-1.0", "jax": "head-1.0"}
    assert store.record.environment.environments["base"].frameworks["torch"].version == "base-1.0"
    rows = list(csv.DictReader((tmp_path / "run" / "results.csv").open()))
    current = {(r["environment"], r["key"]): r for r in rows}  # appended per round: the last row of a case counts
    assert {e for e, _ in current} == {"base", "head"} and {r["rounds"] for r in current.values()} == {"2"}
    store.finish("complete")  # compacted: one row per case
    rows = list(csv.DictReader((tmp_path / "run" / "results.csv").open()))
    assert len(rows) == 6 and {r["rounds"] for r in rows} == {"2"}
    store.close()


def test_resume_completes_missing_rounds_only(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    first: list[tuple[str, str, tuple[str, ...]]] = []
    loop(store, 1, first, names=("base",)).run(CASES)
    # planned for 3 rounds, interrupted during round 2: lstm finished it, jax's lenet was being measured
    lstm = store.find("base", CASES[1].key)
    assert lstm is not None
    store.add(lstm.add_round(lstm))
    interrupted = failed_result(CASES[2], INTERRUPTED, "run interrupted")
    store.add_round(msgspec.structs.replace(interrupted, environment="base"))
    jax = store.find("base", CASES[2].key)
    assert jax is not None and jax.status == INTERRUPTED and jax.round_count == 1
    resumed: list[tuple[str, str, tuple[str, ...]]] = []
    runner = loop(store, 3, resumed, names=("base",))
    assert runner.pending_count(CASES) == 2 + 3  # round 2 of both lenets, round 3 of all three
    runner.run(CASES)
    assert all(r.ok and r.round_count == 3 for r in store.record.results)
    assert [keys for _, _, keys in resumed] == [
        (CASES[2].key,), (CASES[0].key,), (CASES[2].key,), (CASES[0].key, CASES[1].key)]
    assert runner.pending_count(CASES) == 0
    store.close()


def test_a_failed_round_keeps_the_earlier_rounds_and_ends_the_case(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    launches: list[tuple[str, str, tuple[str, ...]]] = []
    # launch 3 is round 2 of the jax group
    loop(store, 3, launches, names=("base",), base={(CASES[2].key, 3)}).run(CASES)
    jax = store.find("base", CASES[2].key)
    assert jax is not None and jax.status == CRASHED and jax.error == "round 2: boom"
    assert jax.samples_ms == (1.0, 1.0, 1.0)  # round 1 is not lost
    assert sum(CASES[2].key in keys for _, _, keys in launches) == 2  # no round 3 after the failure


FAST = ("--suite", "smoke", "--framework", "fake", "--device", "cpu", "--workload", "lenet", "--quiet",
        "--max-time", "0.2", "--min-samples", "3")


def test_cli_repeat_and_python_environments_then_compare_within(tmp_path: Path) -> None:
    import sys

    out = tmp_path / "ab"
    proc = run_cli("run", *FAST, "--repeat", "2", "--python", f"base={sys.executable}",
                   "--python", f"head={sys.executable}", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "run.json").read_text())
    assert [e["name"] for e in record["config"]["environments"]] == ["base", "head"]
    assert record["config"]["measure"]["repeats"] == 2
    assert {r["environment"] for r in record["results"]} == {"base", "head"}
    assert all(len(r["rounds"]) == 2 for r in record["results"])
    assert set(record["environment"]["environments"]) == {"base", "head"}
    proc = run_cli("compare", "--within", str(out), "base", "head", "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    verdicts = json.loads(proc.stdout)
    assert verdicts["baseline"].endswith(":base") and len(verdicts["cases"]) == 2
    # two cases: too few for a variance prior; --within pairs the samples both environments took in turn
    assert all(c["timing"]["method"] == "round-sample-paired-t" for c in verdicts["cases"])
    assert verdicts["caveats"] == []


@pytest.mark.parametrize(("args", "message"), [
    (("--python", "base"), "write NAME=/path/to/python"),
    (("--python", "a b=/bin/sh"), "bad --python name"),
    (("--python", "x=/nonexistent/python"), "is not an executable file"),
    (("--python", "x=/bin/sh", "--python", "x=/bin/sh"), "given twice"),
    (("--repeat", "0"), "--repeat"),
])
def test_bad_rounds_and_environment_options_are_one_line_errors(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    proc = run_cli("run", *FAST, *args, "--output", str(tmp_path / "x"))
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compare_within_needs_known_environments(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.close()
    proc = run_cli("compare", "--within", str(tmp_path / "run"), "base", "nope")
    assert proc.returncode == 2 and "no environment 'nope' (environments: base, head)" in proc.stderr
    proc = run_cli("compare", "--within", str(tmp_path / "run"), "base", "base")
    assert proc.returncode == 2 and "two different environments" in proc.stderr
