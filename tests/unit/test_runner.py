"""The runner end to end on the fake adapter: isolation, pinning, fault mapping, nothing lost."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import psutil
import pytest

from dlbench.cases.spec import Case
from dlbench.record.schema import SCHEMA_VERSION
from dlbench.record.store import load_run
from tests.conftest import ROOT, run_cli, smoke_cases, wait_for_results

FAST = ("--framework", "fake", "--device", "cpu", "--quiet")


def key_of(stored: dict[str, Any]) -> str:
    return Case.from_dict(stored["case"]).key


def rows(directory: Path) -> dict[str, dict[str, str]]:
    with open(directory / "results.csv", newline="") as handle:
        return {row["key"]: row for row in csv.DictReader(handle)}


def test_smoke_on_the_fake_adapter_writes_every_case(tmp_path: Path) -> None:
    proc = run_cli("run", "--suite", "smoke", *FAST, "--output", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    table = rows(tmp_path / "r")
    assert len(table) == smoke_cases()
    for row in table.values():
        assert row["status"] == "ok"
        assert float(row["median_ms"]) > 0
        assert int(row["n_samples"]) >= 3
        assert float(row["first_call_ms"]) > 0
        assert row["affinity"] == "0" and row["threads"] == "1" and row["threads_effective"] == "1"
    # the fake's first call does 3x its work again ("compilation"): kept out of the samples, it stands above
    # the median in most cases; not in every one, since a busy machine can slow any single sample as much
    slower_first = [float(r["first_call_ms"]) > float(r["median_ms"]) for r in table.values()]
    assert sum(slower_first) > len(slower_first) / 2, slower_first
    lenet = next(r for r in table.values() if r["workload"] == "lenet")
    assert lenet["params"] == "431080" and lenet["macs"] == "2293000"
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["schema_version"] == SCHEMA_VERSION and record["status"] == "complete"
    assert record["environment"]["workers"]["fake/cpu/t1"]["threads"] == 1
    assert all(len(r["samples_ms"]) >= 3 for r in record["results"])


def test_one_thread_workers_really_run_on_one_core(tmp_path: Path) -> None:
    proc = run_cli("run", "--suite", "smoke", *FAST, "--workload", "lenet", "--threads", "1,2",
                   "--output", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    by_threads = {r["threads"]: r for r in rows(tmp_path / "r").values() if r["pass"] == "forward"}
    assert by_threads["1"]["affinity"] == "0"
    assert len(by_threads["2"]["affinity"].split()) == 2
    assert float(by_threads["1"]["cpu_per_wall"]) <= 1.05  # one busy thread on one core


FAULTS = {
    "crash:lenet/-/gradient/*": ("lenet", "gradient", "crashed", "SIGSEGV"),
    "abort:lstm/-/gradient/*": ("lstm", "gradient", "crashed", "SIGABRT"),
    "hang:lstm/-/forward/*": ("lstm", "forward", "timeout", "no result after"),
    "oom:autoencoder/pretrain2/forward/*": ("autoencoder", "forward", "oom", "memory limit"),
    "raise:autoencoder/pretrain3/*": ("autoencoder", "gradient", "failed", "simulated build failure"),
}


def test_each_fault_becomes_a_status_and_the_run_goes_on(tmp_path: Path) -> None:
    proc = run_cli("run", "--suite", "smoke", *FAST, "--workload", "lenet,lstm,autoencoder", "--timeout", "8",
                   "--memory-limit", "600", "--output", str(tmp_path / "r"),
                   env={"DLBENCH_FAKE_FAULTS": ",".join(FAULTS)})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    table = rows(tmp_path / "r")
    assert len(table) == 12  # every case has a row, faulty or not
    statuses = {k: (r["status"], r["error"]) for k, r in table.items()}
    expected_bad = {
        "lenet/-/gradient/fake/default/cpu/t1/b2/float32": ("crashed", "SIGSEGV"),
        "lstm/-/gradient/fake/default/cpu/t1/b2/float32": ("crashed", "SIGABRT"),
        "lstm/-/forward/fake/default/cpu/t1/b2/float32": ("timeout", "no result after 8 s"),
        "autoencoder/pretrain2/forward/fake/default/cpu/t1/b2/float32": ("oom", "600 MB (--memory-limit)"),
        "autoencoder/pretrain3/forward/fake/default/cpu/t1/b2/float32": ("failed", "simulated build failure"),
        "autoencoder/pretrain3/gradient/fake/default/cpu/t1/b2/float32": ("failed", "simulated build failure"),
    }
    for key, (status, text) in expected_bad.items():
        assert statuses[key][0] == status, (key, statuses[key])
        assert text in statuses[key][1], (key, statuses[key])
    good = set(table) - set(expected_bad)
    assert len(good) == 6 and all(table[k]["status"] == "ok" for k in good)


def test_oom_without_a_limit_is_caught_inside_the_worker(tmp_path: Path) -> None:
    proc = run_cli("run", "--suite", "smoke", *FAST, "--workload", "lenet", "--output", str(tmp_path / "r"),
                   env={"DLBENCH_FAKE_FAULTS": "oom:lenet/-/forward/*"})
    assert proc.returncode == 1
    table = rows(tmp_path / "r")
    assert table["lenet/-/forward/fake/default/cpu/t1/b2/float32"]["status"] == "oom"
    assert table["lenet/-/gradient/fake/default/cpu/t1/b2/float32"]["status"] == "ok"


def test_a_hang_before_the_first_case_is_a_timeout_not_a_stuck_run(tmp_path: Path) -> None:
    """The worker's warm-up (a tiny autoencoder/pretrain3 b1 case) hangs: the start-up limit ends it."""
    proc = run_cli("run", "--suite", "smoke", *FAST, "--workload", "lenet", "--pass", "forward", "--timeout", "1",
                   "--output", str(tmp_path / "r"), env={"DLBENCH_FAKE_FAULTS": "hang:autoencoder/pretrain3/*/b1/*"},
                   timeout=120)
    assert proc.returncode == 1
    (row,) = rows(tmp_path / "r").values()
    assert row["status"] == "timeout" and "did not start its first case within 30 s" in row["error"]


def test_a_framework_that_fails_to_import_fails_its_cases_only(tmp_path: Path) -> None:
    proc = run_cli("run", "--suite", "smoke", *FAST, "--workload", "lenet", "--output", str(tmp_path / "r"),
                   env={"DLBENCH_FAKE_FAULTS": "import:*"})
    assert proc.returncode == 1
    table = rows(tmp_path / "r")
    assert {r["status"] for r in table.values()} == {"failed"}
    assert all("failed to initialise" in r["error"] and "fakeframework" in r["error"] for r in table.values())


def test_a_second_run_into_the_same_directory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "r"
    env = {**os.environ, "DLBENCH_FAKE_FAULTS": "hang:lenet/-/forward/*", "COLUMNS": "200"}
    first = subprocess.Popen([sys.executable, "-m", "dlbench", "run", "--suite", "smoke", *FAST, "--workload",
                              "lenet", "--timeout", "30", "--output", str(out)], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not (out / "run.json").exists() and time.time() < deadline:
            time.sleep(0.1)
        second = run_cli("run", "--resume", str(out), "--quiet")
        assert second.returncode == 2
        assert "another dlbench run is writing" in second.stderr
        wait_for_worker(first.pid, timeout=180)  # the first run's (hanging) worker, however slow its start
        workers = psutil.Process(first.pid).children(recursive=True)
    finally:
        first.kill()
        first.wait()
    # kill -9 of the parent takes its worker along: no orphan keeps a core busy or hangs forever
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive


@pytest.mark.parametrize("how", ["sigkill", "sigint"])
def test_interrupted_run_resumes_without_measuring_again(tmp_path: Path, how: str) -> None:
    """kill -9 (or Ctrl-C) after a few cases, then --resume: every case once, the early ones unchanged."""
    out = tmp_path / "r"
    env = {**os.environ, "DLBENCH_FAKE_FAULTS": "hang:lstm/-/forward/*", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "dlbench", "run", "--suite", "smoke", *FAST, "--timeout", "120",
                             "--output", str(out)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    wait_for_results(out, 12)  # lstm forward hangs: everything before it is stored
    before = {r.case.key: json.loads(msgspec.json.encode(r)) for r in load_run(out).results}  # + its journal
    if how == "sigkill":
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    else:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130  # generous for a loaded machine; exit takes well under a second
        assert "--resume" in proc.stderr.read()
        assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    resumed = run_cli("run", "--resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads((out / "run.json").read_text())
    keys = [key_of(r) for r in after["results"]]
    assert len(keys) == len(set(keys)) == smoke_cases()
    assert after["status"] == "complete"
    for result in after["results"]:
        assert result["status"] == "ok"
        if key_of(result) in before and before[key_of(result)]["status"] == "ok":
            assert result == before[key_of(result)]  # measured once, kept unchanged
    assert len(rows(out)) == smoke_cases()


def workers_of(pid: int) -> list[psutil.Process]:
    """The kit's children of a dlbench process (every child is started as ``python -m dlbench.process.boot``)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for proc in children:
        try:
            if "dlbench.process.boot" in proc.cmdline():
                found.append(proc)
        except psutil.Error:
            pass
    return found


def wait_for_worker(pid: int, timeout: float = 180) -> psutil.Process:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = workers_of(pid)
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("no worker appeared")


def test_a_worker_killed_from_outside_is_crashed_and_says_sigkill(tmp_path: Path) -> None:
    """kill -9 of a worker by a person is not an out-of-memory kill: it says what happened."""
    out = tmp_path / "r"
    env = {**os.environ, "DLBENCH_FAKE_FAULTS": "hang:lenet/-/gradient/*", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "dlbench", "run", "--suite", "smoke", *FAST, "--workload",
                             "lenet", "--timeout", "120", "--output", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        worker = wait_for_worker(proc.pid)
        wait_for_results(out, 1)  # forward is stored: the worker has gone on to the gradient case, which hangs
        time.sleep(1)
        worker.kill()
        assert proc.wait(timeout=120) == 1
    finally:
        proc.kill()
    table = rows(out)
    hung = table["lenet/-/gradient/fake/default/cpu/t1/b2/float32"]
    assert hung["status"] == "crashed" and "killed by SIGKILL" in hung["error"], hung
    assert "memory" not in hung["error"]
    assert table["lenet/-/forward/fake/default/cpu/t1/b2/float32"]["status"] == "ok"


def test_a_timeout_shorter_than_any_poll_interval_still_holds(tmp_path: Path) -> None:
    """No case can finish ok past its deadline: every case of the smoke suite lasts longer than 50 ms."""
    proc = run_cli("run", "--suite", "smoke", *FAST, "--workload", "lenet", "--timeout", "0.05",
                   "--output", str(tmp_path / "r"))
    assert proc.returncode == 1, proc.stderr
    table = rows(tmp_path / "r")
    assert len(table) == 2
    for row in table.values():
        assert row["status"] == "timeout", row
        assert "no result after 0.05 s" in row["error"]


def test_sigterm_during_calibration_ends_the_run_as_interrupted_and_leaves_no_orphan(tmp_path: Path) -> None:
    out = tmp_path / "r"
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("DLBENCH_FAKE_FAULTS", None)
    proc = subprocess.Popen([sys.executable, "-m", "dlbench", "run", "--suite", "smoke", *FAST, "--workload",
                             "lenet", "--calibrate", "--output", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        child = wait_for_worker(proc.pid)
        envelope = json.loads(Path(child.cmdline()[-2]).read_text())
        assert envelope["module"] == "dlbench.measure.calibrate"  # the calibration child, pinned like a worker
        assert envelope["cores"] == [min(os.sched_getaffinity(0))]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 130
        assert "--resume" in (proc.stderr.read() if proc.stderr else "")
    finally:
        proc.kill()
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    _, alive = psutil.wait_procs([child], timeout=10)
    assert not alive


@pytest.mark.parametrize("kernel_oom", [False, True])
def test_a_sigkill_is_an_oom_only_when_the_kernel_oom_killer_acted(monkeypatch: pytest.MonkeyPatch,
                                                                   kernel_oom: bool) -> None:
    """The parent tells a kill by the kernel's OOM killer (its kill counter rose) from any other SIGKILL."""
    from dlbench.cases.spec import Case, WorkerKey
    from dlbench.measure.timing import MeasureConfig
    from dlbench.process import child as child_module
    from dlbench.process.placement import cores_for
    from dlbench.runner.executor import LocalExecutor
    from dlbench.runner.protocol import WorkerJob

    counts = iter(range(100)) if kernel_oom else iter([5] * 100)
    monkeypatch.setattr(child_module, "kernel_oom_kills", lambda: next(counts))
    case = Case("lenet", "", "forward", "fake", "default", "cpu", 1, 2)
    job = WorkerJob(WorkerKey("fake", "cpu", 1), cores_for(1), (case,), MeasureConfig(timeout_s=120))

    def kill_when_started(event: str, worker: WorkerKey, at: float, pid: int) -> None:
        if event == "start":
            os.kill(pid, signal.SIGKILL)  # the case hangs: whoever killed it, it was not our watchdog

    executor = LocalExecutor(extra_env={"DLBENCH_FAKE_FAULTS": "hang:lenet/-/forward/*"}, trace=kill_when_started)
    results: list = []
    executor.run(job, results.append, lambda worker, info: None)
    (result,) = results
    if kernel_oom:
        assert result.status == "oom" and "kernel's out-of-memory killer" in result.error, result.error
    else:
        assert result.status == "crashed" and "killed by SIGKILL" in result.error, result.error
