"""The isolated verify worker: results cross the process boundary intact, and every way a worker can end
(crash, timeout, error exit, broken framework) becomes an error result with a useful one-line message."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dlbench.frameworks.base import Evaluation
from dlbench.verify.collect import ERROR, OK, ImplResult, Target
from dlbench.verify.isolate import _fill_missing, evaluate_isolated, run_worker
from dlbench.verify.transfer import read_results, write_result
from dlbench.verify.worker import WorkerRequest


def test_results_round_trip_through_files(tmp_path: Path) -> None:
    grads = {"conv1.kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), "conv1.bias": np.ones(2)}
    evaluation = Evaluation(np.array([[0.5, -1.5]], dtype=np.float32), 2.25, grads)
    first = ImplResult(
        "torch",
        "eager",
        Target("lenet"),
        OK,
        evaluation=evaluation,
        trainable_params=431_080,
        framework_flops={"forward": 9.0e6, "gradient": None},
        version="2.13.0",
        biases="canonical",
    )
    second = ImplResult(
        "torch", "compile", Target("autoencoder", "pretrain1"), ERROR, "build failed: boom", biases="random"
    )
    write_result(tmp_path, 0, first)
    write_result(tmp_path, 1, second)
    (tmp_path / "result-2.json.tmp").write_text("{half written")  # a crash mid-write is ignored
    back = read_results(tmp_path)
    assert [r.variant for r in back] == ["eager", "compile"]
    got = back[0].evaluation
    assert got is not None and got.loss == 2.25
    assert got.output.dtype == np.float32 and np.array_equal(got.output, evaluation.output)
    assert list(got.gradients) == ["conv1.kernel", "conv1.bias"]
    assert np.array_equal(got.gradients["conv1.kernel"], grads["conv1.kernel"])
    assert back[0].framework_flops == {"forward": 9.0e6, "gradient": None}
    assert (back[0].trainable_params, back[0].version, back[0].target) == (431_080, "2.13.0", Target("lenet"))
    assert [r.biases for r in back] == ["canonical", "random"]
    assert back[1].evaluation is None and back[1].error == "build failed: boom"
    assert back[1].target == Target("autoencoder", "pretrain1")


def test_worker_request_round_trips() -> None:
    targets = (Target("lenet"), Target("autoencoder", "finetune"))
    request = WorkerRequest("jax", ("jit",), targets, 2, 7, "cpu", 2, "/tmp/x", "canonical")
    assert WorkerRequest.from_json(request.to_json()) == request
    assert WorkerRequest.from_json(replace(request, biases="random").to_json()).biases == "random"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import os; os.abort()", "worker crashed (SIGABRT)"),
        (
            "import sys; print('first'); print('CUDA error: out of memory', file=sys.stderr); sys.exit(3)",
            "worker exited with code 3: CUDA error: out of memory",
        ),
        ("pass", ""),
    ],
)
def test_worker_endings_are_described(tmp_path: Path, code: str, expected: str) -> None:
    assert run_worker([sys.executable, "-c", code], tmp_path / "log", {}, timeout_s=60) == expected


def test_a_hanging_worker_is_killed(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "time.sleep(60)"
    )
    assert run_worker([sys.executable, "-c", code], tmp_path / "log", {}, timeout_s=1.5) == (
        "worker timed out after 1.5 s"
    )


def test_missing_results_are_filled_in_request_order() -> None:
    request = WorkerRequest(
        "tensorflow", ("function", "xla"), (Target("lenet"), Target("lstm")), 2, 0, "cpu", 1, ""
    )
    request = replace(request, biases="canonical")
    delivered = [ImplResult("tensorflow", "xla", Target("lenet"), OK, biases="canonical")]
    results = _fill_missing(request, delivered, "worker crashed (SIGSEGV)")
    assert {r.biases for r in results} == {"canonical"}
    assert [(r.variant, r.target.workload, r.status) for r in results] == [
        ("function", "lenet", ERROR),
        ("function", "lstm", ERROR),
        ("xla", "lenet", OK),
        ("xla", "lstm", ERROR),
    ]
    assert results[0].error == "worker crashed (SIGSEGV)"


def test_isolated_fake_framework_reports_an_error_per_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hidden fake adapter computes no real model: its cases come back as clear errors, via a worker that
    was asked for (and reports) the requested bias mode."""
    monkeypatch.delenv("DLBENCH_FAKE_FAULTS", raising=False)
    results = evaluate_isolated(
        "fake", [Target("lenet"), Target("lstm")], ("default",), batch_size=2, timeout_s=120, biases="canonical"
    )
    assert [r.status for r in results] == [ERROR, ERROR]
    assert [r.biases for r in results] == ["canonical", "canonical"]
    assert all(r.error.startswith(("build failed:", "evaluate failed:")) for r in results)


def test_isolated_broken_install_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLBENCH_FAKE_FAULTS", "import:*")
    results = evaluate_isolated("fake", [Target("lenet")], ("default", "fast"), batch_size=2, timeout_s=120)
    assert [r.status for r in results] == [ERROR, ERROR]
    assert results[0].error.startswith("initialize failed: ImportError: fake adapter: simulated broken")
