"""Bad input: a clear one-line error and exit code 2, never a traceback."""

from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, run_cli

RUN = ("run", "--suite", "smoke", "--framework", "fake", "--device", "cpu", "--quiet")


@pytest.mark.parametrize(("args", "fragment"), [
    (("run", "--suite", "nope"), "unknown suite 'nope'"),
    (("run", "--suite", "smoke", "--framework", "caffe"), "unknown framework 'caffe'"),
    ((*RUN, "--workload", "resnet"), "unknown workload 'resnet'"),
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
