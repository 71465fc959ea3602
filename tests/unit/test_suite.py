"""Suite parsing, validation and expansion into cases."""

from pathlib import Path

import pytest

from dlbench.errors import SuiteError
from dlbench.plan.suite import Overrides, apply_overrides, available_suites, expand, load_suite, parse_suite
from dlbench.workloads import WORKLOADS, networks
from tests.conftest import smoke_cases

BASE = {"workloads": ["lenet"], "devices": {"cpu": {"threads": [1], "batch_sizes": [4]}}}


def test_shipped_suites_are_valid() -> None:
    names = available_suites()
    for required in ("smoke", "lenet", "alexnet", "autoencoder", "lstm", "transformer", "paper", "default"):
        assert required in names
    for name in names:
        load_suite(name)


def test_smoke_expands_to_every_workload_phase_and_pass() -> None:
    suite = load_suite("smoke")
    suite = apply_overrides(suite, Overrides(devices=("cpu",)), cores=2)
    cases = expand(suite, {"fake": ("default",)})
    labels = {(c.workload_label, c.pass_) for c in cases}
    builtin = {"lenet", "alexnet", "autoencoder/pretrain1", "autoencoder/pretrain2", "autoencoder/pretrain3",
               "autoencoder/finetune", "lstm", "transformer"}
    plugins = {f"{w.name}/{p}" if p else w.name for w in networks().values() if w.name not in WORKLOADS
               for p in w.phase_names}  # installed workload plugins run too (no workloads key in smoke)
    assert labels == {(w, p) for w in builtin | plugins for p in ("forward", "gradient")}
    assert all(c.threads == 1 and c.device == "cpu" for c in cases)
    assert len(cases) == len({c.key for c in cases}) == smoke_cases()


def test_paper_threads_are_limited_to_the_cores_present() -> None:
    suite = apply_overrides(load_suite("paper"), Overrides(devices=("cpu",)), cores=2)
    assert suite.devices["cpu"].threads == (1, 2)
    assert any("limited" in note for note in suite.notes)
    assert suite.devices["cpu"].batch_sizes["alexnet"] == (256,)


def test_command_line_overrides_replace_the_suite() -> None:
    suite = apply_overrides(load_suite("lenet"), Overrides(threads=(2,), batch_sizes=(8, 16), passes=("forward",),
                                                           devices=("cpu",)), cores=2)
    cases = expand(suite, {"fake": ("default", "fast")})
    assert {c.batch_size for c in cases} == {8, 16}
    assert {c.threads for c in cases} == {2}
    assert {c.pass_ for c in cases} == {"forward"}
    assert {c.variant for c in cases} == {"default", "fast"}


def test_too_many_threads_on_the_command_line_is_an_error() -> None:
    with pytest.raises(SuiteError, match="more than the 2 cores"):
        apply_overrides(load_suite("lenet"), Overrides(threads=(4,)), cores=2)


def test_workload_override_with_phase() -> None:
    suite = apply_overrides(load_suite("smoke"), Overrides(workloads=("autoencoder/pretrain2",), devices=("cpu",)),
                            cores=2)
    cases = expand(suite, {"fake": ("default",)})
    assert {(c.workload, c.phase) for c in cases} == {("autoencoder", "pretrain2")}


@pytest.mark.parametrize(("data", "message"), [
    ({**BASE, "colour": "red"}, "unknown key 'colour'"),
    ({**BASE, "workloads": ["vgg16"]}, "unknown workload 'vgg16'"),
    ({**BASE, "workloads": ["autoencoder/pretrain9"]}, "no phase 'pretrain9'"),
    ({**BASE, "workloads": "lenet", "passes": ["backward"]}, "unknown pass 'backward'"),
    ({**BASE, "devices": {"tpu": {"batch_sizes": [1]}}}, "unknown device 'tpu'"),
    ({**BASE, "devices": {"cpu": {"threads": [0], "batch_sizes": [1]}}}, "0 is below 1"),
    ({**BASE, "devices": {"cpu": {"batch_sizes": [0]}}}, "0 is below 1"),
    ({**BASE, "devices": {"cpu": {"batch_sizes": ["big"]}}}, "'big' is not a whole number"),
    ({**BASE, "devices": {"cpu": {"threads": [1]}}}, "missing key 'batch_sizes'"),
    ({**BASE, "devices": {"cpu": {"batch_sizes": {"alexnet": [1]}}}}, "no batch sizes for workload 'lenet'"),
    ({**BASE, "measure": {"max_time_s": "long"}}, "measure: max_time_s: expected `float`, got `str`"),
    ({**BASE, "measure": {"min_samples": 1}}, "measure: min_samples: expected `int` >= 3"),
    ({**BASE, "measure": {"samples": 3}}, "unknown key 'samples'"),
    ({**BASE, "precision": "float8"}, "unknown precision"),
])
def test_invalid_suites_are_rejected_with_a_message(data: dict, message: str) -> None:
    with pytest.raises(SuiteError, match=message.replace("(", r"\(")):
        parse_suite(data, "test.toml")


def test_malformed_toml_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("workloads = [lenet\n")
    with pytest.raises(SuiteError, match="malformed TOML"):
        load_suite(str(bad))
    with pytest.raises(SuiteError, match="not found"):
        load_suite(str(tmp_path / "missing.toml"))
    with pytest.raises(SuiteError, match="unknown suite 'nope'"):
        load_suite("nope")


def test_per_workload_batch_sizes(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('workloads = ["lenet", "lstm"]\n[devices.cpu]\nbatch_sizes = { lenet = [64], lstm = [16, 32] }\n')
    suite = load_suite(str(path))
    cases = expand(suite, {"fake": ("default",)})
    assert {(c.workload, c.batch_size) for c in cases} == {("lenet", 64), ("lstm", 16), ("lstm", 32)}
    assert suite.name == "mine"
