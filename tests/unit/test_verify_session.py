"""The verify session end to end, in process, with the framework-free NumPy adapter of tests/verify_fixtures.

The broken adapters really compute a different function (their weights are loaded wrongly, as a buggy
adapter would), and the session must fail and name the culprit and the tensor.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from rich.console import Console

from dlbench.verify.collect import ERROR, OK, UNAVAILABLE, Target, evaluate_adapter
from dlbench.verify.judge import FAIL, PASS, VERDICT_ERROR, verify_all, verify_target
from dlbench.verify.render import print_table, to_json
from tests.verify_fixtures import NumpyAdapter, forget_flatten_permutation, swap_lstm_gates

LSTM = [Target("lstm")]
LENET = [Target("lenet")]
AE = [Target("autoencoder", "pretrain2"), Target("autoencoder", "finetune")]


def collect(adapter: NumpyAdapter, targets: list[Target], variants: tuple[str, ...] = ("plain",)) -> list:
    return evaluate_adapter(adapter, targets, variants, batch_size=2, seed=0)


def render(report: object) -> str:
    out = io.StringIO()
    print_table(report, Console(file=out, width=200, color_system=None))  # type: ignore[arg-type]
    return out.getvalue()


def test_correct_implementations_pass() -> None:
    adapter = NumpyAdapter()
    results = collect(adapter, LENET + AE, ("plain", "other"))
    assert all(r.status == OK for r in results)
    assert all(case.closed for case in adapter.built)  # memory released after each case
    report = verify_all(LENET + AE, results, batch_size=2)
    assert report.verdict == PASS and report.exit_code == 0
    lenet = report.targets[0]
    assert lenet.reference_params == lenet.canonical_params == 431_080
    assert lenet.reference_macs == lenet.canonical_macs == 2_293_000
    # Pairs: reference x 2 variants, and the two variants against each other.
    assert [(c.a, c.b) for c in lenet.comparisons] == [
        ("numpy/plain", "numpy/reference"),
        ("numpy/other", "numpy/reference"),
        ("numpy/other", "numpy/plain"),
    ]
    assert all(c.ok for c in lenet.comparisons)
    assert "PASS" in render(report)


def test_swapped_lstm_gates_fail_and_name_the_culprit() -> None:
    good = NumpyAdapter("good")
    broken = NumpyAdapter("broken", weights_in=swap_lstm_gates(0, 1), gradients_out=swap_lstm_gates(0, 1))
    results = collect(good, LSTM) + collect(broken, LSTM)
    report = verify_all(LSTM, results, batch_size=2)
    assert report.verdict == FAIL and report.exit_code == 1
    target = report.targets[0]
    culprit_lines = [
        p for p in target.problems if p.startswith("broken/plain disagrees with the NumPy reference")
    ]
    assert len(culprit_lines) == 1
    assert "lstm." in culprit_lines[0] and "gradient" in culprit_lines[0]
    assert not any(p.startswith("good/") for p in target.problems)  # the correct one is not blamed
    # The pair good-vs-broken fails too, but is not listed again: the culprit is already named.
    assert not any("good/plain and broken/plain" in p for p in target.problems)
    text = render(report)
    assert "FAIL" in text and "broken/plain disagrees" in text


def test_unpermuted_flatten_fails_on_fc1() -> None:
    weights_in, gradients_out = forget_flatten_permutation("fc1.kernel", 4, 4, 50)
    broken = NumpyAdapter("chw", weights_in=weights_in, gradients_out=gradients_out)
    report = verify_all(LENET, collect(broken, LENET), batch_size=2)
    problems = report.targets[0].problems
    assert report.verdict == FAIL
    assert any("chw/plain disagrees" in p and "output" in p for p in problems)
    failing = {e.tensor for c in report.targets[0].comparisons for e in c.errors if not e.ok}
    assert "fc1.kernel gradient" in failing and "output" in failing


def test_wrong_parameter_count_fails() -> None:
    report = verify_all(LENET, collect(NumpyAdapter(params_delta=10), LENET), batch_size=2)
    assert report.verdict == FAIL
    assert any(
        "431,090 trainable parameters, docs/workloads.md says 431,080" in p for p in report.targets[0].problems
    )


@pytest.mark.parametrize("stage", ["initialize", "build", "evaluate"])
def test_a_broken_framework_is_an_error_line_not_a_crash(stage: str) -> None:
    results = collect(NumpyAdapter(fail=stage), LENET)
    assert [r.status for r in results] == [ERROR]
    assert results[0].error.startswith(f"{stage} failed: ")
    assert "\n" not in results[0].error
    report = verify_all(LENET, results, batch_size=2)
    assert report.verdict == VERDICT_ERROR and report.exit_code == 1
    assert any(p.startswith("numpy/plain: " + stage) for p in report.targets[0].problems)


def test_unavailable_variant_is_a_note() -> None:
    results = collect(NumpyAdapter(unavailable=("other",)), LENET, ("plain", "other"))
    assert [r.status for r in results] == [OK, UNAVAILABLE]
    report = verify_all(LENET, results, batch_size=2)
    assert report.verdict == PASS
    assert any("numpy/other: unavailable" in n for n in report.targets[0].notes)


def test_agreeing_implementations_that_disagree_with_the_definition_are_flagged() -> None:
    swap = swap_lstm_gates(2, 3)
    results = collect(NumpyAdapter("a", swap, swap), LSTM) + collect(NumpyAdapter("b", swap, swap), LSTM)
    report = verify_all(LSTM, results, batch_size=2)
    assert report.verdict == FAIL
    assert any(
        "agree with each other but not with the NumPy reference" in p for p in report.targets[0].problems
    )


def test_reference_alone_still_checks_counts() -> None:
    report = verify_target(Target("autoencoder", "pretrain3"), [], batch_size=2)
    assert report.verdict == PASS
    assert report.reference_params == 20_300 and report.reference_macs == 433_600
    assert any("only the reference" in n for n in report.notes)


def test_json_document_is_strict_and_complete() -> None:
    broken = NumpyAdapter("broken", weights_in=swap_lstm_gates(0, 1), gradients_out=swap_lstm_gates(0, 1))
    report = verify_all(LSTM, collect(broken, LSTM), batch_size=2, notes=["a note"])
    document = json.loads(to_json(report))  # allow_nan=False inside: no NaN/Infinity can slip through
    assert document["verdict"] == FAIL and document["notes"] == ["a note"]
    target = document["targets"][0]
    assert target["counts"]["canonical_params"] == 1_411_842
    assert target["tolerance"]["gradient"] > 0
    assert target["implementations"][0]["framework_flops"] == {"forward": 123.0, "gradient": None}
    tensors = {t["tensor"]: t for t in target["comparisons"][0]["tensors"]}
    assert set(tensors) >= {"output", "loss", "lstm.recurrent_kernel gradient", "embedding.table gradient"}
    assert not tensors["lstm.recurrent_kernel gradient"]["ok"]
    assert np.isfinite(tensors["output"]["max_rel"])


def test_comparisons_grow_linearly_with_the_implementations() -> None:
    """With the reference: each implementation against it and each against the first implementation (2n - 1
    comparisons, not n(n+1)/2); a wrong one still fails both of its comparisons. Without the reference: all
    pairs, which name the odd one out."""
    from dlbench.frameworks.base import Evaluation
    from dlbench.verify.judge import REFERENCE, compare_pairs
    from dlbench.verify.tolerances import tolerance_for

    rng = np.random.default_rng(0)
    truth = Evaluation(rng.normal(size=(2, 3)), 1.0, {"w": rng.normal(size=(4, 4))})
    wrong = Evaluation(truth.output + 1.0, 1.0, dict(truth.gradients))
    impls = [(f"f{i}/v", truth) for i in range(5)] + [("bad/v", wrong)]
    tolerance = tolerance_for("lenet")
    pairs = compare_pairs([(REFERENCE, truth), *impls], tolerance, {})
    assert len(pairs) == 2 * len(impls) - 1
    assert {(p.a, p.b) for p in pairs if not p.ok} == {("bad/v", REFERENCE), ("bad/v", "f0/v")}
    mutual = compare_pairs(impls, tolerance, {})
    assert len(mutual) == len(impls) * (len(impls) - 1) // 2
    assert all(not p.ok for p in mutual if "bad/v" in (p.a, p.b)) and sum(not p.ok for p in mutual) == 5
