"""Failures of the environment around a run end in one line and exit 2, and leave nothing behind: a lock that
cannot be taken, a full disk at the start, a deleted current directory, a closed or full standard output,
a resume on fewer cores than planned; and a resume never silently ignores options that would change the run."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlbench.errors import StoreError
from dlbench.record import store as store_module
from dlbench.record.store import RunRecord, RunStore
from tests.conftest import ROOT, assert_one_line_error, run_cli
from tests.record_fixtures import config
from tests.regress_fixtures import make_result, make_run, write_run
from tests.unit.test_file_safety import invoke, one_line_error

ONE_CASE = ("run", "--suite", "smoke", "--framework", "fake", "--workload", "lenet", "--pass", "forward",
            "--quiet")


def record() -> RunRecord:
    return RunRecord(run_id="r", created="2026-01-01T00:00:00+00:00", config=config())


# ----- the lock and the first write -----
def test_a_lock_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "r"
    (out / ".lock").mkdir(parents=True)
    assert_one_line_error(run_cli(*ONE_CASE, "-o", str(out)), "lock file")
    assert sorted(os.listdir(out)) == [".lock"]


@pytest.mark.parametrize("failing", ["atomic_write", "lock_write"])
def test_a_full_disk_at_the_start_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        failing: str) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if failing == "atomic_write":
        monkeypatch.setattr(store_module, "atomic_write", full)
    else:
        real_open = open

        class FullFile:
            def __init__(self, *args: object, **kwargs: object) -> None:
                self.handle = real_open(*args, **kwargs)  # type: ignore[call-overload]

            def __getattr__(self, name: str) -> object:
                return getattr(self.handle, name)

            def write(self, text: str) -> int:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(store_module, "open", FullFile, raising=False)
    out = tmp_path / "new" / "run"
    with pytest.raises(StoreError, match="No space left"):
        RunStore.open(out, record())
    assert not out.exists()  # no empty .lock, no empty run.json, no directory it made
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(StoreError):
        RunStore.open(existing, record())
    assert sorted(os.listdir(existing)) == ["notes.txt"]


def test_a_failed_resume_does_not_create_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="nothing to resume"):
        RunStore.open(tmp_path / "absent", record(), resume=True)
    assert not (tmp_path / "absent").exists()


# ----- a deleted current directory -----
def test_a_deleted_current_directory(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", make_run("r1", [make_result()]))
    gone = tmp_path / "gone"

    def in_deleted_cwd(*args: str) -> subprocess.CompletedProcess[str]:
        gone.mkdir(exist_ok=True)
        script = f"cd {gone} && rmdir {gone} && exec {sys.executable} -m dlbench " + " ".join(args)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=300,
                              check=False)

    listed = in_deleted_cwd("list")
    assert listed.returncode == 0 and "smoke" in listed.stdout, listed.stderr
    compared = in_deleted_cwd("compare", str(run), str(run))
    assert compared.returncode == 0 and "Traceback" not in compared.stderr, compared.stderr
    assert_one_line_error(in_deleted_cwd(*ONE_CASE), "cannot create output directory")


# ----- standard output that cannot be written -----
def with_stdout(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", proc.stderr)


def test_compare_into_a_full_device_or_a_closed_pipe(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", make_run("r1", [make_result()]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for fmt in ("table", "markdown", "json"):
        command = [sys.executable, "-m", "dlbench", "compare", str(run), str(run), "--format", fmt]
        with open("/dev/full", "w") as full:
            proc = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=300,
                                  check=False)
        assert_one_line_error(with_stdout(proc), "cannot write to standard output: No space left")
        read_end, write_end = os.pipe()
        os.close(read_end)
        proc = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, text=True, env=env,
                              timeout=300, check=False)
        os.close(write_end)
        assert_one_line_error(with_stdout(proc), "cannot write to standard output: Broken pipe")


def test_a_closed_standard_output_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Descriptor 1 closed before dlbench starts (``dlbench compare a b >&-``): Python has no sys.stdout."""
    run = write_run(tmp_path / "run", make_run("r1", [make_result()]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "dlbench", "compare", str(run), str(run)]
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                          timeout=300, check=False, preexec_fn=lambda: os.close(1))
    assert_one_line_error(with_stdout(proc), "cannot write to standard output: it is closed")


# ----- resume -----
@pytest.mark.parametrize("option", [("--framework", "fake"), ("--batch-size", "4"), ("--suite", "smoke"),
                                    ("--threads", "1"), ("--timeout", "5"), ("--seed", "3"), ("-w", "lenet")])
def test_resume_refuses_options_that_would_change_the_run(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                          option: tuple[str, ...]) -> None:
    run = write_run(tmp_path / "run", make_run("r1", [make_result()]))
    before = (run / "run.json").read_bytes()
    result = invoke(capsys, "run", "--resume", str(run), *option)
    one_line_error(result, "cannot change it")
    assert option[0] in result[2]
    assert (run / "run.json").read_bytes() == before


def one_core() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to plan a two-thread case")
def test_resume_on_fewer_cores_is_refused_or_finished_with_the_cores_present(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert run_cli(*ONE_CASE, "--threads", "1,2", "-o", str(out)).returncode == 0
    data = json.loads((out / "run.json").read_text())
    data["results"] = [r for r in data["results"] if r["case"]["threads"] == 1]
    data["status"] = "interrupted"
    (out / "run.json").write_text(json.dumps(data))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    resume = [sys.executable, "-m", "dlbench", "run", "--resume", str(out), "--quiet"]
    refused = subprocess.run(resume, capture_output=True, text=True, env=env, preexec_fn=one_core, timeout=300,
                             check=False)
    assert_one_line_error(refused, "--skip-missing-cores")
    finished = subprocess.run([*resume, "--skip-missing-cores"], capture_output=True, text=True, env=env,
                              preexec_fn=one_core, timeout=300, check=False)
    assert finished.returncode == 0, finished.stderr
    stored = json.loads((out / "run.json").read_text())
    assert stored["status"] == "complete"
    by_threads = {r["case"]["threads"]: r for r in stored["results"]}
    assert by_threads[1]["status"] == "ok"
    assert by_threads[2]["status"] == "unavailable" and "--skip-missing-cores" in by_threads[2]["error"]
