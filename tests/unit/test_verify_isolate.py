"""The isolated verify worker: results cross the process boundary intact, and every way a worker can end
(crash, timeout, error exit, broken framework) becomes an error result with a useful one-line message."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dlbench.errors import DlbenchError
from dlbench.frameworks.base import Evaluation
from dlbench.process.child import Cause, Ending
from dlbench.process.messages import encode
from dlbench.verify.collect import ERROR, OK, ImplResult, Target
from dlbench.verify.job import WorkerRequest
from dlbench.verify.launch import _fill_missing, describe_failure, evaluate_isolated
from dlbench.verify.transfer import CODEC, Delivered, read_result, write_result
from tests.conftest import run_cli


def test_results_round_trip_through_messages_and_files(tmp_path: Path) -> None:
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
        affinity=(0,),
    )
    second = ImplResult(
        "torch", "compile", Target("autoencoder", "pretrain1"), ERROR, "build failed: boom", biases="random"
    )
    messages = [write_result(tmp_path, 0, first), write_result(tmp_path, 1, second)]
    wire = [CODEC.decode(encode(m)) for m in messages]  # as they cross the pipe
    assert wire == messages and all(isinstance(m, Delivered) for m in wire)
    back = [read_result(tmp_path, m) for m in messages]
    assert [r.variant for r in back] == ["eager", "compile"]
    assert back[0].affinity == (0,)
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
    assert WorkerRequest.from_wire(json.loads(json.dumps(request.to_wire()))) == request
    assert WorkerRequest.from_wire(replace(request, biases="random").to_wire()).biases == "random"


@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        (Ending(Cause.SIGNAL, -6, "killed by SIGABRT", "", ""), "worker crashed (SIGABRT)"),
        (
            Ending(Cause.EXIT, 3, "exit code 3", "first | CUDA error: out of memory", "CUDA error: out of memory"),
            "worker exited with code 3: CUDA error: out of memory",
        ),
        (Ending(Cause.EXIT, 0, "exit code 0", "", ""), ""),
        (Ending(Cause.TIMEOUT, -9, "killed by SIGKILL", "", ""), "worker timed out after 1.5 s"),
        (Ending(Cause.KERNEL_OOM, -9, "killed by SIGKILL", "", ""), "worker killed by the kernel's out-of-memory"),
    ],
)
def test_worker_endings_are_described(ending: Ending, expected: str) -> None:
    assert describe_failure(ending, timeout_s=1.5).startswith(expected)
    assert bool(describe_failure(ending, 1.5)) == bool(expected)


def test_verify_threads_1_runs_pinned_to_exactly_one_core() -> None:
    """``verify --threads 1`` means what ``run --threads 1`` means: the worker runs on one core."""
    proc = run_cli("verify", "--framework", "fake", "--workload", "lenet", "--threads", "1", "--format", "json")
    document = json.loads(proc.stdout)
    implementations = [i for t in document["targets"] for i in t["implementations"]]
    assert implementations
    assert all(i["affinity"] == [min(os.sched_getaffinity(0))] for i in implementations), implementations


def test_verify_with_more_threads_than_cores_is_refused() -> None:
    with pytest.raises(DlbenchError, match="cannot verify with 100000 threads"):
        evaluate_isolated("fake", [Target("lenet")], ("default",), batch_size=2, threads=100_000)


def test_missing_results_are_filled_in_request_order() -> None:
    request = WorkerRequest(
        "tensorflow", ("function", "xla"), (Target("lenet"), Target("lstm")), 2, 0, "cpu", 1, ""
    )
    request = replace(request, biases="canonical")
    delivered = [ImplResult("tensorflow", "xla", Target("lenet"), OK, biases="canonical")]
    results = _fill_missing(request, delivered, "worker crashed (SIGSEGV)", lambda variant, workload: True)
    assert {r.biases for r in results} == {"canonical"}
    assert [(r.variant, r.target.workload, r.status) for r in results] == [
        ("function", "lenet", ERROR),
        ("function", "lstm", ERROR),
        ("xla", "lenet", OK),
        ("xla", "lstm", ERROR),
    ]
    assert results[0].error == "worker crashed (SIGSEGV)"


def test_a_variant_made_for_other_workloads_is_not_missing() -> None:
    """The worker skips a variant that does not apply to a workload (an attention implementation on LeNet):
    the parent must not report that pair as undelivered."""
    request = WorkerRequest("torch", ("eager", "plain_attention"), (Target("lenet"),), 2, 0, "cpu", 1, "")
    delivered = [ImplResult("torch", "eager", Target("lenet"), OK)]
    results = _fill_missing(request, delivered, "", lambda variant, workload: variant != "plain_attention")
    assert [(r.variant, r.status) for r in results] == [("eager", OK)]


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
