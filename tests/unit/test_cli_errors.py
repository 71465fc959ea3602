"""Bad input: a clear one-line error and exit code 2, never a traceback."""

from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, run_cli

RUN = ("run", "--suite", "smoke", "--framework", "fake", "--device", "cpu", "--quiet")


@pytest.mark.parametrize(("args", "fragment"), [
    (("run", "--suite", "nope"), "unknown suite 'nope'"),
    (("run", "--suite", "smoke", "--framework", "caffe"), "unknown framework 'caffe'"),
    ((*RUN, "--workload", "vgg16"), "unknown workload 'vgg16'"),
    ((*RUN, "--workload", "autoencoder/pretrain7"), "no phase 'pretrain7'"),
    ((*RUN, "--variant", "turbo"), "unknown variant 'turbo'"),
    ((*RUN, "--batch-size", "0"), "batch size must be at least 1"),
    ((*RUN, "--batch-size", "abc"), "batch size 'abc' is not a whole number"),
    ((*RUN, "--threads", "0"), "thread count must be at least 1"),
    ((*RUN, "--threads", "x"), "is not a whole number"),
    ((*RUN, "--threads", "4096"), "more than the"),
    ((*RUN, "--pass", "backward"), "unknown pass 'backward'"),
    ((*RUN, "--device", "tpu"), "unknown device 'tpu'"),
    (("run", "--suite", "smoke", "--framework", "fake", "--device", "gpu"), "no usable gpu"),
    (("run", "--resume", "/nonexistent/dir"), "nothing to resume"),
])
def test_bad_run_input(args: tuple[str, ...], fragment: str) -> None:
    assert_one_line_error(run_cli(*args), fragment)


def test_malformed_suite_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("workloads = [\n")
    assert_one_line_error(run_cli("run", "--suite", str(bad), "--framework", "fake"), "malformed TOML")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('workloads = ["lenet"]\nbatch = 3\n[devices.cpu]\nbatch_sizes = [1]\n')
    assert_one_line_error(run_cli("run", "--suite", str(wrong), "--framework", "fake"), "unknown key 'batch'")
    typed = tmp_path / "typed.toml"
    typed.write_text('workloads = ["lenet"]\n[devices.cpu]\nbatch_sizes = "many"\n')
    assert_one_line_error(run_cli("run", "--suite", str(typed), "--framework", "fake"),
                          "expected a non-empty list of whole numbers")


def test_output_that_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(run_cli(*RUN, "--output", str(blocker / "out")), "cannot create output directory")


def test_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert run_cli(*RUN, "--workload", "lenet", "--pass", "forward", "--output", str(out)).returncode == 0
    assert_one_line_error(run_cli(*RUN, "--output", str(out)), "already holds a run")


def test_fake_gpu_path_runs_when_a_gpu_is_simulated(tmp_path: Path) -> None:
    proc = run_cli("run", "--suite", "smoke", "--framework", "fake", "--device", "gpu", "--workload", "lenet",
                   "--quiet", "--output", str(tmp_path / "g"), env={"DLBENCH_FAKE_GPU": "1"})
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "g" / "results.csv").read_text()
    assert ",gpu," in text and ",ok," in text


def test_list_and_env_commands() -> None:
    listed = run_cli("list", "--all")
    assert listed.returncode == 0
    for word in ("fake", "lenet", "pretrain3", "431,080", "62,378,344", "smoke", "paper"):
        assert word in listed.stdout
    env = run_cli("env", "--json", "--no-frameworks")
    assert env.returncode == 0
    assert '"cpu_model"' in env.stdout and '"python"' in env.stdout


def test_explicit_gpu_run_with_a_broken_gpu_stack_is_refused_by_the_probe(tmp_path: Path) -> None:
    """The metadata check passes (the simulated GPU), the framework fails to start on it: exit 2, one line,
    the framework's own error, and nothing written."""
    proc = run_cli("run", "--suite", "smoke", "--framework", "fake", "--device", "gpu", "--workload", "lenet",
                   "--quiet", "--output", str(tmp_path / "g"),
                   env={"DLBENCH_FAKE_GPU": "1", "DLBENCH_FAKE_FAULTS": "import:*"})
    assert_one_line_error(proc, "fake fails on the GPU: ImportError: fake adapter: simulated broken installation")
    assert not (tmp_path / "g").exists()


# ----- Ctrl-C while the command starts -----
# Started as the ``dlbench`` console script starts (``from dlbench.__main__ import run; run()``), saying
# "ready" once the interpreter is up (its own start-up, ``site`` included, is CPython's, as for any Python
# program) and the package's few light statements have run: from then on every instant is the command's,
# the imports of the command line first.
STARTER = ("import sys; import dlbench; sys.stdout.write('ready\\n'); sys.stdout.flush(); "
           "from dlbench.__main__ import run; run()")


@pytest.mark.parametrize("delay_s", [0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32])
def test_ctrl_c_while_the_command_starts_is_a_quiet_130(delay_s: float) -> None:
    """SIGINT at any instant while dlbench starts (importing its command line, then the command) ends the
    process quietly with 130, never a KeyboardInterrupt traceback (or it had finished: 0; or it was exiting,
    when the interpreter has put back the system's handler: killed by SIGINT, silently)."""
    import signal
    import subprocess
    import sys
    import time

    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", STARTER, "list"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(delay_s)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        if not (stderr.rstrip().endswith("KeyboardInterrupt") and "dlbench" not in stderr):
            break  # else it landed in the starter's own line, before dlbench's code: not what is judged
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert proc.returncode in (130, 0, -signal.SIGINT), (proc.returncode, stderr)
    assert len(stderr.strip().splitlines()) <= 1, stderr


def test_a_path_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    """A directory name with a byte that is not UTF-8 (0xff) is refused by run, report and export before
    anything is written, with the byte shown escaped."""
    import os
    import subprocess
    import sys

    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/out\xff")
    env = {**os.environ, "LC_ALL": "C"}
    for args in (["run", "-f", "fake", "-s", "smoke", "--quiet", "-o", bad],
                 ["report", bad, "-o", str(tmp_path / "r")], ["export", bad], ["run", "--resume", bad]):
        proc = subprocess.run([sys.executable, "-m", "dlbench", *args], capture_output=True, text=True, env=env,
                              timeout=120, check=False)
        assert_one_line_error(proc, "not valid UTF-8")
        assert "\\xff" in proc.stderr
    assert list(tmp_path.iterdir()) == []
