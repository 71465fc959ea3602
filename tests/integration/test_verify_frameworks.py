"""``dlbench verify`` against the real frameworks (issue 5), on small batches.

* Every installed framework passes on every workload phase with its default variant, and its other variants
  pass on the two workloads with the classic layout hazards (LeNet's flatten order, the LSTM's gate order).
  Both with the default random biases and, on the smaller workloads, with the canonical zero biases of the
  timed runs.
* A deliberately wrong model makes verification fail and name the culprit: a real adapter that loads the
  canonical weights wrongly (LSTM gates swapped, flatten rows left in channels-first order) and maps the
  gradients back the same wrong way, exactly like a buggy adapter would. The framework really computes the
  wrong network; no reported number is edited. A bias loaded with its LSTM gate blocks in the wrong order
  passes with the canonical zero biases (the blind spot) and fails with ``--biases random``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from click.testing import CliRunner

from dlbench.cli.verify_cmd import command
from dlbench.frameworks.base import Adapter, BuildRequest, BuiltCase, Evaluation, RuntimeInfo
from dlbench.frameworks.registry import get_adapter, installed_adapters
from dlbench.verify.collect import OK, Target, evaluate_adapter
from dlbench.verify.judge import FAIL, PASS, verify_all
from tests.conftest import network_phases
from tests.verify_fixtures import (
    DelegatingCase,
    WeightMap,
    forget_flatten_permutation,
    identity,
    permute_lstm_bias_gates,
    swap_lstm_gates,
)

pytestmark = pytest.mark.integration

FRAMEWORKS = [name for name in ("torch", "tensorflow", "jax") if get_adapter(name).is_installed()]
LAYOUT_HAZARDS = ["lenet", "lstm"]


def run_verify(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(command, [*args, "--format", "json", "--batch-size", "2"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def assert_passed(code: int, document: dict[str, Any]) -> None:
    failing = {
        t["workload"] + "/" + t["phase"]: t["problems"] for t in document["targets"] if t["verdict"] != PASS
    }
    assert code == 0 and not failing, failing
    for target in document["targets"]:
        assert all(i["status"] == "ok" for i in target["implementations"]), target["implementations"]
        assert all(
            i["trainable_params"] == target["counts"]["canonical_params"] for i in target["implementations"]
        )


def test_default_variants_pass_every_workload_phase() -> None:
    """One run for all frameworks: the NumPy reference (AlexNet's takes ~15 s) is computed once."""
    if not FRAMEWORKS:
        pytest.skip("no framework installed")
    variants = {get_adapter(name).default_variant for name in FRAMEWORKS}
    code, document = run_verify("--framework", ",".join(FRAMEWORKS), "--variant", ",".join(sorted(variants)))
    assert len(document["targets"]) == network_phases() and document["biases"] == "random"  # plugins too
    assert_passed(code, document)
    for target in document["targets"]:
        evaluated = {i["framework"] for i in target["implementations"]}
        assert evaluated == set(FRAMEWORKS)


def test_default_variants_pass_with_canonical_zero_biases() -> None:
    """The exact weights of the timed runs; AlexNet (most of the cost) is left to the random-bias run."""
    if not FRAMEWORKS:
        pytest.skip("no framework installed")
    variants = ",".join(sorted({get_adapter(name).default_variant for name in FRAMEWORKS}))
    workloads = "lenet,lstm,autoencoder/pretrain2,autoencoder/finetune"
    code, document = run_verify("-f", ",".join(FRAMEWORKS), "--variant", variants, "-w", workloads,
                                "--biases", "canonical")
    assert len(document["targets"]) == 4 and document["biases"] == "canonical"
    assert_passed(code, document)


def test_other_variants_pass_the_layout_hazards() -> None:
    """Every non-default variant that exists on the CPU, on LeNet (flatten order) and the LSTM (gate order)."""
    others = {
        v for name in FRAMEWORKS for v in get_adapter(name).variants if v != get_adapter(name).default_variant
        and "cpu" in get_adapter(name).variant_devices.get(v, ("cpu",))
    }
    if not others:
        pytest.skip("no framework with more than one variant is installed")
    args = ["--framework", ",".join(FRAMEWORKS), "--variant", ",".join(sorted(others))]
    code, document = run_verify(*args, "--workload", ",".join(LAYOUT_HAZARDS))
    assert_passed(code, document)
    evaluated = {(i["framework"], i["variant"]) for t in document["targets"] for i in t["implementations"]}
    expected = {(n, v) for n in FRAMEWORKS for v in get_adapter(n).variants
                if v in others and any(get_adapter(n).applies(v, w) for w in LAYOUT_HAZARDS)}
    assert evaluated == expected


class MisloadingCase(DelegatingCase):
    """Delegates to the real built case; only the gradients' way back to the canonical layout is remapped."""

    def __init__(self, inner: BuiltCase, gradients_out: WeightMap) -> None:
        super().__init__(inner)
        self.gradients_out = gradients_out

    def evaluate(self) -> Evaluation:
        ev = self.inner.evaluate()
        return Evaluation(ev.output, ev.loss, self.gradients_out(dict(ev.gradients)))

    def close(self) -> None:
        self.inner.close()


class MisloadingAdapter(Adapter):
    """A real adapter with a weight-loading bug: the network it builds gets wrongly placed weights."""

    module = "dlbench"
    distributions = ("dlbench",)
    display_name = "misloading"

    def __init__(self, inner: Adapter, name: str, weights_in: WeightMap, gradients_out: WeightMap) -> None:
        self.inner = inner
        self.name = name  # type: ignore[misc]
        self.variants = (inner.default_variant,)  # type: ignore[misc]
        self.default_variant = inner.default_variant  # type: ignore[misc]
        self.weights_in = weights_in
        self.gradients_out = gradients_out

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        return self.inner.initialize(device, threads)

    def _build(self, request: BuildRequest) -> BuiltCase:
        built = self.inner.build(replace(request, weights=self.weights_in(dict(request.weights))))
        return MisloadingCase(built, self.gradients_out)


@pytest.fixture(scope="module")
def real_adapter() -> Adapter:
    """The cheapest installed framework, used in this process (the bug tests need an injected adapter)."""
    adapters = [a for a in installed_adapters() if a.name in FRAMEWORKS]
    if not adapters:
        pytest.skip("no framework installed")
    return adapters[0]


def check_culprit(
    real: Adapter, bad: MisloadingAdapter, target: Target, biases: str = "random"
) -> tuple[list[str], set[str]]:
    """Verify the real adapter and its buggy twin; return the lines blaming the twin, and its failing
    tensors."""
    good = MisloadingAdapter(real, real.name, identity, identity)  # the same path, without the bug
    results = []
    for adapter in (good, bad):
        results += evaluate_adapter(adapter, [target], adapter.variants, batch_size=2, threads=2, biases=biases)
    assert all(r.status == OK for r in results), [r.error for r in results]
    report = verify_all([target], results, batch_size=2, biases=biases)
    assert report.verdict == FAIL and report.exit_code == 1
    problems = list(report.targets[0].problems)
    assert not any(p.startswith(f"{real.name}/") for p in problems), problems  # the correct one is not blamed
    lines = [
        p for p in problems if p.startswith(f"{bad.name}/") and "disagrees with the NumPy reference" in p
    ]
    against_reference = [c for c in report.targets[0].comparisons if c.a.startswith(f"{bad.name}/")][0]
    return lines, {e.tensor for e in against_reference.errors if not e.ok}


@pytest.mark.parametrize(("first", "second"), [(0, 1), (2, 3)])
def test_swapped_lstm_gates_are_caught_and_named(real_adapter: Adapter, first: int, second: int) -> None:
    swap = swap_lstm_gates(first, second)
    bad = MisloadingAdapter(real_adapter, "gateswap", swap, swap)
    lines, failing = check_culprit(real_adapter, bad, Target("lstm"))
    assert len(lines) == 1 and "gradient" in lines[0]
    assert {"output", "lstm.recurrent_kernel gradient", "lstm.input_kernel gradient"} <= failing


def test_unpermuted_flatten_is_caught_and_named(real_adapter: Adapter) -> None:
    weights_in, gradients_out = forget_flatten_permutation("fc1.kernel", 4, 4, 50)
    bad = MisloadingAdapter(real_adapter, "chw", weights_in, gradients_out)
    lines, failing = check_culprit(real_adapter, bad, Target("lenet"))
    assert len(lines) == 1
    assert {"output", "fc1.kernel gradient"} <= failing


@pytest.mark.parametrize("order", [(1, 0, 2, 3), (1, 2, 3, 0)])
def test_misordered_lstm_bias_blocks_pass_canonical_and_fail_random(
    real_adapter: Adapter, order: tuple[int, int, int, int]
) -> None:
    """The real framework gets the LSTM bias with its gate blocks in ``order`` and the right kernels; its bias
    gradient comes back through its own (correctly laid out) slots. Zero canonical biases hide the bug."""
    weights_in, _ = permute_lstm_bias_gates(order)
    bad = MisloadingAdapter(real_adapter, "biasorder", weights_in, identity)
    target = Target("lstm")
    canonical = evaluate_adapter(bad, [target], bad.variants, batch_size=2, threads=2, biases="canonical")
    assert [r.status for r in canonical] == [OK], canonical[0].error
    report = verify_all([target], canonical, batch_size=2, biases="canonical")
    assert report.verdict == PASS, report.targets[0].problems  # the blind spot of all-zero biases
    lines, failing = check_culprit(real_adapter, bad, target, biases="random")
    assert len(lines) == 1
    assert {"output", "lstm.bias gradient"} <= failing
