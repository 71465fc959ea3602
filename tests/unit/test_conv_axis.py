"""The convolution-algorithm axis on the fake adapter: planning, keys, workers of their own, recording,
resume, the report's section and the terminal's table, verify's plan and the layer workloads' reference."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest

from dlbench.cases.spec import CONV_ALGORITHMS, Case, WorkerKey
from dlbench.errors import SuiteError
from dlbench.frameworks.base import BuildRequest, CaseUnavailable
from dlbench.frameworks.fake import FakeAdapter
from dlbench.frameworks.registry import get_adapter
from dlbench.plan.suite import Overrides, apply_overrides, expand, load_suite, parse_suite
from dlbench.record.store import load_run
from dlbench.runner.executor import LocalExecutor
from dlbench.runner.protocol import WorkerJob
from dlbench.runner.schedule import group_cases
from dlbench.verify.collect import Target, build_request
from dlbench.verify.reference import reference_evaluate
from dlbench.verify.selection import make_plan
from dlbench.workloads import LAYER_WORKLOADS, get_workload, initial_weights, make_batch
from tests.conftest import ROOT, run_cli, wait_for_results

FAST = ("--framework", "fake", "--device", "cpu", "--quiet", "--max-time", "0.05")


def case(conv: str = "native", variant: str = "default", workload: str = "lenet") -> Case:
    return Case(workload=workload, phase="", pass_="forward", framework="fake", variant=variant, device="cpu",
                threads=1, batch_size=4, conv=conv)


def test_a_native_key_is_the_key_of_runs_before_the_axis_and_another_algorithm_ends_the_key() -> None:
    assert case().key == "lenet/-/forward/fake/default/cpu/t1/b4/float32"
    assert case("fft").key == "lenet/-/forward/fake/default/cpu/t1/b4/float32/conv-fft"
    assert len({case(a).key for a in CONV_ALGORITHMS}) == len(CONV_ALGORITHMS)
    assert Case.from_dict({k: v for k, v in case().to_dict().items() if k != "conv"}) == case()  # old records


def test_the_algorithms_multiply_only_the_workloads_with_convolutions() -> None:
    suite = parse_suite({"workloads": ["lenet", "lstm", "conv:alexnet.conv2"], "conv": "all",
                         "devices": {"cpu": {"batch_sizes": [2]}}})
    cases = expand(suite, {"fake": ("default",)})
    by_workload: dict[str, set[str]] = {}
    for c in cases:
        by_workload.setdefault(c.workload, set()).add(c.conv)
    assert by_workload == {"lenet": set(CONV_ALGORITHMS), "lstm": {"native"},
                           "conv:alexnet.conv2": set(CONV_ALGORITHMS)}
    assert len(cases) == (4 + 1 + 4) * 2  # two passes
    assert parse_suite({"devices": {"cpu": {"batch_sizes": [2]}}}).convs == ("native",)


@pytest.mark.parametrize("value", ["winograd", ["native", "FFT"], [], 3])
def test_a_bad_conv_setting_is_a_one_line_suite_error(value: object) -> None:
    with pytest.raises(SuiteError, match="conv"):
        parse_suite({"conv": value, "devices": {"cpu": {"batch_sizes": [2]}}}, "s.toml")


def test_the_command_line_replaces_the_suite_s_algorithms() -> None:
    suite = load_suite("conv")
    assert suite.convs == CONV_ALGORITHMS and suite.workloads == ("lenet", "alexnet")
    assert apply_overrides(suite, Overrides(convs=("fft", "native", "fft")), cores=2).convs == ("fft", "native")
    with pytest.raises(SuiteError, match="--conv: unknown convolution algorithm 'gemm'"):
        apply_overrides(suite, Overrides(convs=("gemm",)), cores=2)


def test_the_adapter_base_refuses_what_cannot_exist() -> None:
    adapter = FakeAdapter()

    def request(workload: str, conv: str) -> BuildRequest:
        return BuildRequest(workload=get_workload(workload), phase="", batch=make_batch(workload, 2),
                            weights=initial_weights(workload), variant="default", device="cpu", conv=conv)

    with pytest.raises(CaseUnavailable, match="lstm has no convolution"):
        adapter.check_request(request("lstm", "fft"))
    with pytest.raises(SuiteError, match="unknown convolution algorithm"):
        adapter.check_request(request("lenet", "winograd"))

    class NativeOnly(FakeAdapter):
        conv_algorithms = ("native",)

    with pytest.raises(CaseUnavailable, match="implements the convolution algorithms native, not 'im2col'"):
        NativeOnly().check_request(request("lenet", "im2col"))
    adapter.check_request(request("conv:lenet.conv1", "direct"))  # a layer workload has its convolution


def test_a_variant_with_an_import_time_switch_gets_a_worker_of_its_own_with_its_environment() -> None:
    groups = group_cases([case(variant="isolated"), case(variant="default"), case("fft", variant="fast")])
    keys = [key for key, _ in groups]
    assert keys == [WorkerKey("fake", "cpu", 1), WorkerKey("fake", "cpu", 1, "isolated")]
    assert [k.label for k in keys] == ["fake/cpu/t1", "fake/cpu/t1/isolated"]
    assert [len(members) for _, members in groups] == [2, 1]
    specs = [LocalExecutor().spec(WorkerJob(key=key, cores=(0,), cases=members)) for key, members in groups]
    assert "DLBENCH_FAKE_ISOLATED" not in specs[0].env and specs[1].env["DLBENCH_FAKE_ISOLATED"] == "1"
    assert WorkerJob.from_wire(WorkerJob(key=keys[1], cores=(0,), cases=()).to_wire()).key == keys[1]


def csv_rows(directory: Path) -> list[dict[str, str]]:
    with open(directory / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_run_records_the_algorithm_and_what_ran_in_every_row_and_reports_them(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("run", "--suite", "smoke", *FAST, "-w", "lenet,lstm,conv:lenet.conv1", "--conv", "native,fft",
                   "--variant", "default,isolated", "-b", "4", "--output", str(out), "--report")
    assert proc.returncode == 0, proc.stderr
    record = load_run(out)
    assert record.config.suite.convs == ("native", "fft")
    rows = csv_rows(out)
    # (lenet and its conv1 layer x2 algorithms + lstm) x passes x variants
    assert len(rows) == len(record.results) == (2 + 2 + 1) * 2 * 2
    for row in rows:
        assert row["conv"] == ("fft" if row["key"].endswith("/conv-fft") else "native")
        assert row["status"] == "ok"
        # the isolated variant's worker had its switch in the environment: what ran says so
        expected = "" if row["workload"] == "lstm" else ("isolated" if row["variant"] == "isolated" else "cost-model")
        assert row["conv_backend"] == expected
    for result in record.results:  # the worker built each case with its algorithm: the built case says so
        assert result.traits.get("conv", "native") == result.case.conv
    assert {r.traits.get("conv") for r in record.results} == {"native", "fft", None}  # None: the LSTM
    workers = set(record.environment.workers)
    assert {"fake/cpu/t1", "fake/cpu/t1/isolated"} <= workers
    page = (out / "report" / "index.html").read_text()
    assert "Convolution algorithms" in page and "conv-algorithms-time-memory.svg" in page
    with open(out / "report" / "tables" / "conv-algorithms.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert {(r["workload"], r["variant"], r["pass"], r["conv"]) for r in table} == {
        (w, v, p, a) for w in ("lenet", "conv:lenet.conv1") for v in ("default", "isolated")
        for p in ("forward", "gradient") for a in ("native", "fft")}
    assert all(float(r["speedup_vs_native"]) == 1.0 for r in table if r["conv"] == "native")
    assert sum(r["fastest"] == "True" for r in table) == 8  # one per (workload, variant, pass)
    with open(out / "report" / "tables" / "conv-layers-gflops.csv", newline="") as handle:
        layers = list(csv.DictReader(handle))
    assert {r["workload"] for r in layers} == {"conv:lenet.conv1"} and len(layers) == 8
    assert all(float(r["gflops_per_s"]) > 0 for r in layers)
    with open(out / "report" / "tables" / "study-lenet.csv", newline="") as handle:
        study = handle.read()
    assert "fft" not in study  # the study-style tables keep the framework's own convolution
    assert "convolution algorithms: median ms" in run_cli("run", "--suite", "smoke", "--framework", "fake", "-w",
                                                          "lenet", "--conv", "all", "-b", "2", "--max-time", "0.02",
                                                          "--output", str(tmp_path / "shown")).stdout


def test_an_interrupted_sweep_of_algorithms_resumes_each_case_once(tmp_path: Path) -> None:
    out = tmp_path / "r"
    env = {**os.environ, "DLBENCH_FAKE_FAULTS": "hang:lenet/-/gradient/*/conv-direct", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "dlbench", "run", "--suite", "smoke", *FAST, "-w", "lenet",
                             "--conv", "all", "-b", "2", "--timeout", "120", "--output", str(out)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_results(out, 7)  # the direct gradient hangs: the seven cases before it are stored
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {r.case.key: r for r in load_run(out).results}
    resumed = run_cli("run", "--resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    after = load_run(out)
    keys = [r.case.key for r in after.results]
    assert len(keys) == len(set(keys)) == 8 and after.status == "complete"
    assert {r.case.conv for r in after.results} == set(CONV_ALGORITHMS)
    for result in after.results:
        if result.case.key in before and before[result.case.key].ok:
            assert msgspec.to_builtins(result) == msgspec.to_builtins(before[result.case.key])
    assert run_cli("run", "--resume", str(out), "--conv", "fft").returncode == 2  # the plan is the run's


def test_verify_plans_every_algorithm_for_the_convolutional_targets_only() -> None:
    plan = make_plan(["fake"], ["lenet", "lstm"], [], ["all"])
    assert plan.convs == CONV_ALGORITHMS
    assert make_plan(["fake"], ["lenet"], []).convs == ("native",)
    with pytest.raises(SuiteError):
        make_plan(["fake"], ["lenet"], [], ["fft", "spectral"])


def test_verify_leaves_out_a_variant_of_another_device_unless_named() -> None:
    """The fake adapter's ``autotune`` exists on the GPU only: a CPU verify leaves it out with a note (it
    would only be 'unavailable'), a GPU verify and a verify that names it keep it."""
    cpu = make_plan(["fake"], ["lenet"], [])
    assert "autotune" not in cpu.frameworks[0].variants and any("autotune" in n for n in cpu.notes)
    assert "autotune" in make_plan(["fake"], ["lenet"], [], device="gpu").frameworks[0].variants
    assert make_plan(["fake"], ["lenet"], ["autotune"]).frameworks[0].variants == ("autotune",)


@pytest.mark.parametrize("name", sorted(LAYER_WORKLOADS))
def test_the_layer_reference_is_its_network_s_convolution_and_its_gradient_is_the_loss_s(name: str) -> None:
    """The reference of a layer benchmark: the convolution's output (checked against a direct sum at one
    element) and gradients of ``sum(y**2) / (2N)`` (checked by central differences at one kernel element)."""
    request = build_request(Target(name), "reference", 2, 0, "cpu")
    workload = get_workload(name)
    layer = workload.convolutions[0]
    weights = {k: np.asarray(v, np.float64) for k, v in request.weights.items()}
    result = reference_evaluate(name, "", request.batch, weights, calibrate=False)
    y = result.evaluation.output
    assert y.shape == (2, layer.out_h, layer.out_w, layer.cout) and result.macs_per_sample == workload.macs()
    x = np.pad(request.batch.x.astype(np.float64), ((0, 0), (layer.padding,) * 2, (layer.padding,) * 2, (0, 0)))
    i, j, s = layer.out_h - 1, layer.out_w // 2, layer.stride
    window = x[1, i * s:i * s + layer.k, j * s:j * s + layer.k, :]
    kernel, bias = weights[f"{layer.name}.kernel"], weights[f"{layer.name}.bias"]
    direct = np.einsum("hwc,hwco->o", window, kernel) + bias
    np.testing.assert_allclose(y[1, i, j], direct, rtol=1e-10, atol=1e-10)
    step = 1e-5
    index = (layer.k - 1, 0, layer.cin - 1, layer.cout // 2)

    def loss(delta: float) -> float:
        shifted = dict(weights)
        shifted[f"{layer.name}.kernel"] = kernel.copy()
        shifted[f"{layer.name}.kernel"][index] += delta
        return reference_evaluate(name, "", request.batch, shifted, gradients=False, calibrate=False).evaluation.loss

    numeric = (loss(step) - loss(-step)) / (2 * step)
    analytic = result.evaluation.gradients[f"{layer.name}.kernel"][index]
    assert numeric == pytest.approx(analytic, rel=1e-6, abs=1e-8)


def test_list_shows_the_algorithms_and_the_layer_workloads() -> None:
    proc = run_cli("list", "--all")
    assert proc.returncode == 0, proc.stderr
    assert "native, im2col, fft, direct" in proc.stdout
    assert "conv:alexnet.conv5" in proc.stdout and "isolated" in proc.stdout
    assert get_adapter("fake").conv_algorithms == CONV_ALGORITHMS
    assert json.loads(json.dumps(list(LAYER_WORKLOADS)))[0] == "conv:lenet.conv1"


def test_a_gpu_only_switch_runs_on_the_simulated_gpu_and_is_unavailable_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    proc = run_cli("run", "--suite", "smoke", *FAST, "--device", "cpu,gpu", "-w", "lenet", "--conv", "native,im2col",
                   "--variant", "default,autotune", "-b", "2", "--output", str(out),
                   env={"DLBENCH_FAKE_GPU": "1"})
    assert proc.returncode == 0, proc.stderr
    status = {(r["device"], r["variant"], r["conv"]): r["status"] for r in csv_rows(out)}
    assert len(status) == 2 * 2 * 2
    for (device, variant, _), value in status.items():
        expected = "unavailable" if (device, variant) == ("cpu", "autotune") else "ok"
        assert value == expected
    reasons = {r["error"] for r in csv_rows(out) if r["status"] == "unavailable"}
    assert reasons == {"the Fake (cost model) variant 'autotune' runs on gpu only"}
