"""The suite side of GPU runs: one GPU per run (``gpu`` key, ``--gpu``), variants per device (the shipped GPU
sections run torch's NCHW eager and both LSTM strategies), checked like every other suite key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlbench.errors import SuiteError
from dlbench.plan.planner import make_plan
from dlbench.plan.suite import Overrides, apply_overrides, expand, load_suite, parse_suite
from dlbench.process.placement import check_gpu_selector

GPU_SUITE = {"name": "g", "workloads": ["lenet", "lstm"], "devices": {
    "cpu": {"threads": [1], "batch_sizes": [2]},
    "gpu": {"batch_sizes": [4], "variants": {"torch": ["channels_last", "eager"]}}}}


def test_a_device_table_of_variants_replaces_the_suites_on_that_device_only() -> None:
    suite = parse_suite(GPU_SUITE)
    cases = expand(suite, {"torch": ("channels_last",), "fake": ("default",)})
    by_device = {d: {(c.framework, c.variant) for c in cases if c.device == d} for d in ("cpu", "gpu")}
    assert by_device["cpu"] == {("torch", "channels_last"), ("fake", "default")}
    assert by_device["gpu"] == {("torch", "channels_last"), ("torch", "eager"), ("fake", "default")}
    assert suite.record().devices["gpu"].variants == {"torch": ("channels_last", "eager")}  # kept in run.json


def test_the_command_lines_variants_win_over_a_devices() -> None:
    suite = apply_overrides(parse_suite(GPU_SUITE), Overrides(variants=("compile",)), cores=2)
    assert all(not s.variants for s in suite.devices.values())


@pytest.mark.parametrize(("variants", "message"), [
    ("eager", "expected a table framework = \\[variants\\]"),
    ({"torch": 3}, "expected a list of strings"),
    ({"torch": []}, "expected at least one name"),
])
def test_malformed_device_variants_are_suite_errors(variants: object, message: str) -> None:
    data = {**GPU_SUITE, "devices": {"gpu": {"batch_sizes": [4], "variants": variants}}}
    with pytest.raises(SuiteError, match=message):
        parse_suite(data)


def test_an_unknown_variant_in_a_device_table_is_refused_by_the_plan(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('workloads = ["lenet"]\n[devices.cpu]\nbatch_sizes = [2]\n'
                    '[devices.gpu]\nbatch_sizes = [2]\nvariants = { fake = ["turbo"] }\n')
    with pytest.raises(SuiteError, match="devices.gpu.variants: framework 'fake' has no variant 'turbo'"):
        make_plan(str(path), Overrides(frameworks=("fake",)), fleet=True)


def test_shipped_gpu_sections_run_eager_and_both_lstm_strategies() -> None:
    plan = make_plan("smoke", Overrides(frameworks=("torch", "tensorflow"), devices=("gpu",)), fleet=True)
    pairs = {(c.framework, c.variant, c.workload) for c in plan.cases}
    assert {("torch", "eager", "lenet"), ("torch", "channels_last", "lenet"), ("torch", "lstm_cell", "lstm"),
            ("torch", "channels_last", "lstm"), ("tensorflow", "keras_lstm", "lstm"),
            ("tensorflow", "function", "lstm")} <= pairs
    assert not any(v in ("lstm_cell", "keras_lstm") and w != "lstm" for _, v, w in pairs)
    for name in ("alexnet", "lenet", "lstm", "paper"):
        assert load_suite(name).devices["gpu"].variants  # every GPU section with convolutions or the LSTM


@pytest.mark.parametrize("text", ["0", "3", "GPU-5f3c2a9e-0000-4000-8000-000000000001",
                                  "MIG-GPU-5f3c2a9e-0000-4000-8000-000000000001/1/0"])
def test_one_gpu_is_an_index_or_a_uuid(text: str) -> None:
    assert check_gpu_selector(f" {text} ") == text


@pytest.mark.parametrize("text", ["", "0,1", "-1", "cuda:0", "GPU-", "all"])
def test_anything_else_is_not_one_gpu(text: str) -> None:
    with pytest.raises(SuiteError, match="is not one GPU"):
        check_gpu_selector(text)


def test_the_suite_key_and_the_option_choose_the_gpu() -> None:
    suite = parse_suite({**GPU_SUITE, "gpu": 1})
    assert suite.gpu == "1" and suite.record().gpu == "1"
    assert apply_overrides(suite, Overrides(gpu="GPU-abc"), cores=2).gpu == "GPU-abc"
    with pytest.raises(SuiteError, match="g: gpu: 'x' is not one GPU"):
        parse_suite({**GPU_SUITE, "gpu": "x"}, "g")
    with pytest.raises(SuiteError, match="expected a GPU index or UUID"):
        parse_suite({**GPU_SUITE, "gpu": True}, "g")


def test_gpu_case_keys_have_no_thread_count_so_they_match_across_hosts() -> None:
    from dlbench.cases.spec import Case

    on_two = Case("lenet", "", "forward", "torch", "eager", "gpu", 2, 64)
    on_96 = Case("lenet", "", "forward", "torch", "eager", "gpu", 96, 64)
    assert on_two.key == on_96.key == "lenet/-/forward/torch/eager/gpu/b64/float32"
    cpu = Case("lenet", "", "forward", "torch", "eager", "cpu", 2, 64)
    assert cpu.key == "lenet/-/forward/torch/eager/cpu/t2/b64/float32"


def test_a_gpu_section_runs_with_one_thread_count_so_its_keys_stay_unique() -> None:
    suite = apply_overrides(parse_suite(GPU_SUITE), Overrides(devices=("cpu", "gpu"), threads=(1, 2)), cores=2)
    assert suite.devices["gpu"].threads == (2,) and suite.devices["cpu"].threads == (1, 2)
    assert any("GPU cases run with one host thread count" in note for note in suite.notes)
    cases = expand(suite, {"fake": ("default",)})
    assert len({c.key for c in cases}) == len(cases)


def test_run_gpu_puts_every_gpu_case_on_that_gpu_and_records_it(tmp_path: Path) -> None:
    import csv
    import json

    from tests.conftest import run_cli

    uuid = "GPU-5f3c2a9e-0000-4000-8000-000000000001"
    proc = run_cli("run", "--suite", "smoke", "--framework", "fake", "--device", "gpu,cpu", "--workload", "lenet",
                   "--gpu", uuid, "--quiet", "--output", str(tmp_path / "r"), env={"DLBENCH_FAKE_GPU": "1"})
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "r" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["gpu_selector"] for r in rows if r["device"] == "gpu"} == {uuid}
    assert {r["gpu_selector"] for r in rows if r["device"] == "cpu"} == {""}
    assert all(r["layout"] == "NHWC" and r["sync_ms"] != "" for r in rows)
    assert all(r["device_peak_mb"] and r["device_peak_measure_mb"] for r in rows if r["device"] == "gpu")
    assert all("/gpu/t" not in r["key"] for r in rows)
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["config"]["suite"]["gpu"] == uuid
    resumed = run_cli("run", "--resume", str(tmp_path / "r"), "--gpu", "0")
    assert resumed.returncode == 2 and "--gpu" in resumed.stderr


def test_run_refuses_more_than_one_gpu_with_one_line(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    proc = run_cli("run", "--suite", "smoke", "--framework", "fake", "--device", "gpu", "--gpu", "0,1",
                   "--output", str(tmp_path / "r"), env={"DLBENCH_FAKE_GPU": "1"})
    assert proc.returncode == 2 and "is not one GPU" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()
