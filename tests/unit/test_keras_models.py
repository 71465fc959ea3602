"""Keras models on the command line (``keras:lenet=pkg.mod:fn``), without Keras: parsing, registration, the
planner's Keras backends, the weight bindings and the builder checks on fakes, and the one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from dlbench.errors import DlbenchError, SuiteError
from dlbench.frameworks.base import Evaluation
from dlbench.frameworks.keras.adapter import KerasAdapter, KerasModelError, build_model
from dlbench.frameworks.keras.bindings import BY_NAME, BY_ORDER, bind, canonical_name, load
from dlbench.plan.planner import resolve_frameworks
from dlbench.plan.suite import parse_suite
from dlbench.verify.collect import OK, ImplResult, Target
from dlbench.verify.judge import FAIL, PASS, VERDICT_ERROR, verify_target
from dlbench.workloads import entry_workload, get_workload, load_builder, registry, select_phases
from dlbench.workloads.keras_describe import Described, param_names, workload_of
from dlbench.workloads.keras_models import (
    DEFINITIONS_ENV,
    ENV,
    EXAMPLE,
    is_own_model,
    keep_definition,
    parse_keras_entry,
    register,
    registered,
)
from tests.conftest import assert_one_line_error, run_cli


@pytest.fixture(autouse=True)
def no_keras_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts without registrations, and what it registers is undone (the variables are restored)."""
    monkeypatch.setenv(ENV, "")
    monkeypatch.setenv(DEFINITIONS_ENV, "")
    registry.reset()
    yield
    monkeypatch.undo()
    registry.reset()


def test_an_entry_names_a_workload_and_a_function() -> None:
    assert parse_keras_entry("keras:lenet=examples.keras_lenet:build_model") == (
        "lenet", "examples.keras_lenet:build_model")
    assert entry_workload("keras:lenet=examples.keras_lenet:build_model") == "lenet"
    assert entry_workload("autoencoder/pretrain2") == "autoencoder"


def test_an_entry_without_a_workload_is_a_model_of_its_own() -> None:
    entry = "keras:examples.keras_lenet:build_model"
    assert parse_keras_entry(entry) == (entry, "examples.keras_lenet:build_model")
    assert is_own_model(entry) and not is_own_model(EXAMPLE)


@pytest.mark.parametrize(("entry", "fragment"), [
    ("keras:examples.keras_lenet", "is not of the form 'module:attribute'"),
    ("keras:lenet=examples.keras_lenet", "is not of the form 'module:attribute'"),
    ("keras:lenet=", "is not of the form 'module:attribute'"),
    ("keras:=examples.keras_lenet:build_model", "is not a workload name"),
    ("keras:autoencoder/pretrain1=m:f", "is not a workload name"),
])
def test_a_malformed_entry_is_one_line(entry: str, fragment: str) -> None:
    with pytest.raises(SuiteError, match=fragment) as info:
        parse_keras_entry(entry)
    assert "\n" not in str(info.value)


def test_registering_keeps_the_model_in_the_environment_for_the_workers() -> None:
    assert select_phases(EXAMPLE) == ("lenet", ("",))
    assert registered() == {"lenet": "examples.keras_lenet:build_model"}
    register(EXAMPLE)  # the same model again: fine
    with pytest.raises(SuiteError, match="already has the Keras model"):
        register("keras:lenet=examples.keras_lenet:other")


def test_a_module_that_cannot_be_found_is_refused_before_anything_runs() -> None:
    with pytest.raises(SuiteError, match="module 'no_such_module_here' cannot be imported"):
        register("keras:lenet=no_such_module_here:build")
    with pytest.raises(SuiteError, match="unknown workload 'vgg'"):
        select_phases("keras:vgg=examples.keras_lenet:build_model")
    assert registered() == {}


def test_the_keras_builder_is_the_command_lines_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_keras_net.py").write_text("def build():\n    return 'a model'\n")
    monkeypatch.chdir(tmp_path)  # the current directory is importable, as with python -m
    select_phases("keras:lenet=my_keras_net:build")
    builder = load_builder("lenet", "keras")
    assert callable(builder) and builder() == "a model"
    assert load_builder("alexnet", "keras") is None  # no Keras model: the adapters say unavailable


def test_a_suite_may_name_a_keras_model_and_size_it_as_its_workload() -> None:
    suite = parse_suite({"workloads": [EXAMPLE], "devices": {"cpu": {"batch_sizes": {"lenet": [8]}}}})
    assert suite.workloads == (EXAMPLE,)  # stored as given: a resumed run registers it again
    assert suite.devices["cpu"].batch_sizes == {"lenet": (8,)}
    assert registered() == {"lenet": "examples.keras_lenet:build_model"}


def test_a_keras_model_brings_the_keras_backends_into_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    if not KerasAdapter.is_installed(_any_keras_adapter()):
        pytest.skip("keras and a backend are not installed")
    without = {a.name for a in resolve_frameworks(())}
    assert not any(name.startswith("keras-") for name in without)  # hidden: a default run has none
    select_phases(EXAMPLE)
    with_model = {a.name for a in resolve_frameworks(())}
    assert with_model - without <= {"keras-jax", "keras-tensorflow", "keras-torch"}
    assert with_model - without
    monkeypatch.setattr(KerasAdapter, "is_installed", lambda self: False)
    with pytest.raises(DlbenchError, match="Keras 3 and a backend are not installed"):
        resolve_frameworks(())
    with pytest.raises(DlbenchError, match="'keras-jax' is not installed .pip install keras"):
        resolve_frameworks(("keras-jax",))


def _any_keras_adapter() -> KerasAdapter:
    from dlbench.frameworks.registry import get_adapter

    adapter = get_adapter("keras-jax")
    assert isinstance(adapter, KerasAdapter)
    return adapter


# ----- the weight bindings and the builder checks, on fake Keras objects
class FakeVariable:
    def __init__(self, path: str, shape: tuple[int, ...]) -> None:
        self.path, self.shape, self.value = path, shape, None

    def assign(self, value: np.ndarray) -> None:
        self.value = value


def fake_model(paths: list[tuple[str, tuple[int, ...]]]) -> Any:
    weights = [FakeVariable(p, s) for p, s in paths]
    return SimpleNamespace(weights=weights, trainable_weights=weights)


LENET = get_workload("lenet")
CANONICAL = [(p.name.replace(".", "/"), p.shape) for p in LENET.params]


def test_weights_are_bound_by_name_then_by_order() -> None:
    assert canonical_name("lenet/conv1/kernel") == "conv1.kernel"
    named = fake_model(list(reversed(CANONICAL)))  # any order: matched by path
    bound, how = bind(named, LENET, "")
    assert how == BY_NAME and bound["fc2.bias"].path == "fc2/bias"
    anonymous = fake_model([(f"layer{i}/w", shape) for i, (_, shape) in enumerate(CANONICAL)])
    bound, how = bind(anonymous, LENET, "")
    assert how == BY_ORDER and bound["conv1.kernel"].path == "layer0/w"
    weights = {p.name: np.full(p.shape, 0.5) for p in LENET.params}
    load(bound, weights)
    assert bound["fc1.kernel"].value.dtype == np.float32


def test_weights_that_are_not_the_workloads_are_one_line() -> None:
    with pytest.raises(ValueError, match="are not the parameters of lenet") as info:
        bind(fake_model([("dense/kernel", (784, 10)), ("dense/bias", (10,))]), LENET, "")
    assert "\n" not in str(info.value)


class FakeKeras:
    class Model:
        pass


def test_the_builder_must_return_a_keras_model() -> None:
    model = FakeKeras.Model()
    assert build_model(FakeKeras, lambda: model, "lenet") is model

    def raising() -> Any:
        raise RuntimeError("broken\nsecond line")

    with pytest.raises(KerasModelError, match="raised RuntimeError: broken$"):
        build_model(FakeKeras, raising, "lenet")
    with pytest.raises(KerasModelError, match="returned int, not a Keras 3 keras.Model"):
        build_model(FakeKeras, lambda: 42, "lenet")
    with pytest.raises(KerasModelError, match="is not a function"):
        build_model(FakeKeras, 42, "lenet")


@pytest.mark.parametrize(("workload", "fragment"), [
    ("keras:examples.keras_lenet", "is not of the form 'module:attribute'"),
    ("keras:no_such_module_here:build", "cannot be imported"),
    ("keras:lenet=no_such_module_here:build", "cannot be imported"),
    ("keras:vgg=examples.keras_lenet:build_model", "unknown workload 'vgg'"),
])
def test_bad_keras_entries_on_the_command_line(workload: str, fragment: str) -> None:
    for command in (("run", "--framework", "fake", "--quiet"), ("verify", "--framework", "fake")):
        assert_one_line_error(run_cli(*command, "--workload", workload), fragment)


# ----- a Keras model of its own: the derived definition, its FLOPs, verify without a reference
OWN = "keras:my_pkg.nets:build"
DESCRIBED = Described(input_shape=[8], num_classes=3, weights=[["hidden/kernel", [8, 4]], ["hidden/bias", [4]],
                                                               ["logits/kernel", [4, 3]], ["logits/bias", [3]]],
                      macs=8 * 4 + 4 * 3, description="Keras model mlp: input 8, 3 classes")


def test_the_derived_definition_is_the_models() -> None:
    workload = workload_of(OWN, DESCRIBED)
    assert [(p.name, p.shape, p.init) for p in workload.params] == [
        ("hidden.kernel", (8, 4), "glorot_uniform"), ("hidden.bias", (4,), "zeros"),
        ("logits.kernel", (4, 3), "glorot_uniform"), ("logits.bias", (3,), "zeros")]
    assert workload.input_shape == (8,) and workload.num_classes == 3 and workload.macs("") == 44
    assert workload.phase("").trainable == tuple(p.name for p in workload.params)
    assert param_names(["a/dense/kernel", "b/dense/kernel"]) == ["a.dense.kernel", "b.dense.kernel"]


def own_model_registered() -> None:
    keep_definition(OWN, DESCRIBED.to_wire())
    registry.reset()


def test_a_model_of_its_own_is_a_workload_counted_from_its_macs_anywhere() -> None:
    own_model_registered()
    assert get_workload(OWN).total_params() == 8 * 4 + 4 + 4 * 3 + 3
    assert registry.get_plugin(OWN).cross_check
    assert registry.pass_flops(OWN, "", "gradient", 2) == 3 * 2 * 44 * 2
    # a process that does not know the model (a report of the stored run) counts from the stored MACs
    assert registry.pass_flops("keras:elsewhere:build", "", "forward", 2, macs=10) == 40


def evaluation(scale: float) -> Evaluation:
    rng = np.random.default_rng(0)
    grads = {p.name: rng.random(p.shape) * scale for p in workload_of(OWN, DESCRIBED).params}
    return Evaluation(output=np.ones((2, 3)) * scale, loss=1.0 * scale, gradients=grads)


def impl(framework: str, scale: float) -> ImplResult:
    return ImplResult(framework, "v", Target(OWN), OK, evaluation=evaluation(scale), trainable_params=51)


def test_verify_compares_the_backends_of_a_model_of_its_own_with_each_other() -> None:
    own_model_registered()
    agree = verify_target(Target(OWN), [impl("keras-jax", 1.0), impl("keras-torch", 1.0)], 2)
    assert agree.verdict == PASS and any("compared with each other" in n for n in agree.notes)
    disagree = verify_target(Target(OWN), [impl("keras-jax", 1.0), impl("keras-torch", 1.01)], 2)
    assert disagree.verdict == FAIL
    alone = verify_target(Target(OWN), [impl("keras-jax", 1.0)], 2)
    assert alone.verdict == VERDICT_ERROR and "nothing was compared" in alone.reference_error


def test_verify_of_a_model_of_its_own_takes_only_the_keras_backends() -> None:
    from dlbench.verify.selection import make_plan

    entry = "keras:examples.keras_lenet:build_model"
    keep_definition(entry, DESCRIBED.to_wire())  # as if its child had described it
    registry.reset()
    if not KerasAdapter.is_installed(_any_keras_adapter()):
        pytest.skip("keras and a backend are not installed")
    plan = make_plan((), (entry,), ())
    assert plan.targets == (Target(entry),)
    assert plan.frameworks and all(f.name.startswith("keras-") for f in plan.frameworks)


def test_a_resumed_run_registers_its_keras_models_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dlbench.runner.session import reopen

    out = tmp_path / "run"
    proc = run_cli("run", "--workload", EXAMPLE, "--framework", "fake", "--pass", "forward", "--quiet",
                   "--output", str(out))
    assert proc.returncode == 0, proc.stderr  # the entry runs lenet on the frameworks named (here the fake)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # where examples/ is importable
    store, cases = reopen(out, None)
    store.close()
    assert {c.workload for c in cases} == {"lenet"}
    assert registered() == {"lenet": "examples.keras_lenet:build_model"}
