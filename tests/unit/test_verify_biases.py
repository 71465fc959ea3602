"""``verify --biases``: the verification weights, and the bias-loading bugs that only non-zero biases reveal.

The bug models are NumPy adapters (tests/verify_fixtures) whose model really computes with wrongly loaded
biases; nothing reported is edited. With the canonical (all-zero) biases a wrongly *placed* bias is still
zero, so a model whose bias gradients come back through the right slots is indistinguishable from a correct
one: that blind spot is asserted here, together with its closing by ``--biases random``.
"""

from __future__ import annotations

import io
import json
from math import sqrt

import numpy as np
import pytest
from rich.console import Console

from dlbench.errors import DlbenchError
from dlbench.verify.biases import (
    CANONICAL,
    DEFAULT_BIASES,
    RANDOM,
    bias_fan_in,
    random_bias,
    verification_weights,
)
from dlbench.verify.collect import ERROR, OK, Target, evaluate_adapter
from dlbench.verify.judge import FAIL, PASS, VERDICT_ERROR, verify_all
from dlbench.verify.render import print_table, to_json
from dlbench.workloads import WORKLOADS, Workload, get_workload, initial_weights
from dlbench.workloads.definitions import ParamSpec, Phase
from tests.verify_fixtures import NumpyAdapter, WeightMap, identity, permute_lstm_bias_gates

LSTM = [Target("lstm")]
SMALL = ["lenet", "autoencoder", "lstm"]  # AlexNet's 62M canonical weights cost a second per draw


def zero_initialised(workload: str) -> list[str]:
    return [p.name for p in get_workload(workload).params if p.init == "zeros"]


def test_random_is_the_default() -> None:
    assert DEFAULT_BIASES == RANDOM


@pytest.mark.parametrize("workload", SMALL)
def test_random_biases_are_seeded_non_zero_and_leave_every_other_tensor_canonical(workload: str) -> None:
    canonical = initial_weights(workload, 3)
    first = verification_weights(workload, 3, RANDOM)
    again = verification_weights(workload, 3, RANDOM)
    other_seed = verification_weights(workload, 4, RANDOM)
    biases = zero_initialised(workload)
    assert biases and set(first) == set(canonical)
    for name, value in first.items():
        assert value.dtype == np.float32 and value.shape == canonical[name].shape
        assert np.array_equal(value, again[name]), name  # identical across calls (and processes: seeded)
        if name in biases:
            assert np.all(value != 0), name
            assert not np.array_equal(value, other_seed[name]), name
            assert np.abs(value).max() <= 1 / sqrt(bias_fan_in(get_workload(workload), name)), name
        else:
            assert np.array_equal(value, canonical[name]), name  # bit for bit the canonical tensor


def test_canonical_mode_is_exactly_the_canonical_initial_weights() -> None:
    for workload in SMALL:
        canonical, verified = initial_weights(workload, 1), verification_weights(workload, 1, CANONICAL)
        assert set(verified) == set(canonical)
        assert all(np.array_equal(verified[n], canonical[n]) for n in canonical)
        assert all(not verified[n].any() for n in zero_initialised(workload))


def test_fan_in_follows_the_layer_each_bias_is_added_to() -> None:
    fan_in = {
        ("lenet", "conv1.bias"): 5 * 5 * 1,
        ("lenet", "fc1.bias"): 800,
        ("alexnet", "conv2.bias"): 5 * 5 * 96,
        ("alexnet", "fc6.bias"): 9216,
        ("autoencoder", "enc2.bias"): 400,
        ("autoencoder", "dec2.bias"): 200,  # the tied decoder maps the 200 codes back to 400 inputs
        ("autoencoder", "classifier.bias"): 100,
        ("lstm", "lstm.bias"): 128 + 128,  # embedding and hidden state
        ("transformer", "layer1.attn.key.bias"): 256,
        ("transformer", "layer3.ff2.bias"): 1024,
        ("transformer", "layer0.ln2.beta"): 256,  # layer norms: the normalised width
        ("transformer", "final_ln.gamma"): 256,
        ("transformer", "classifier.bias"): 256,
    }
    for (workload, name), expected in fan_in.items():
        assert bias_fan_in(get_workload(workload), name) == expected, (workload, name)
    for workload in WORKLOADS.values():  # every zero-initialised tensor has a rule (AlexNet: no weights drawn)
        for name in zero_initialised(workload.name):
            assert random_bias(workload, name, 0).shape == workload.param(name).shape


def test_layer_norm_gammas_are_one_plus_a_draw_and_betas_a_draw() -> None:
    weights = verification_weights("transformer", 0, "random")
    canonical = verification_weights("transformer", 0, "canonical")
    gamma, beta = weights["layer2.ln1.gamma"], weights["layer2.ln1.beta"]
    assert 0 < np.abs(gamma - 1).max() <= 1 / 16 and 0 < np.abs(beta).max() <= 1 / 16
    assert (canonical["layer2.ln1.gamma"] == 1).all() and not canonical["layer2.ln1.beta"].any()
    np.testing.assert_array_equal(weights["layer2.ff1.kernel"], canonical["layer2.ff1.kernel"])


def test_a_zero_initialised_tensor_without_a_layer_is_refused() -> None:
    odd = Workload(
        "odd", "", (1,), 2, (ParamSpec("scale", (3,), "zeros"),), (Phase("", ("scale",), 0, "logits"),), 1
    )
    with pytest.raises(ValueError, match="no rule for the fan-in of zero-initialised parameter 'scale'"):
        bias_fan_in(odd, "scale")


def test_unknown_bias_mode_is_a_one_line_error() -> None:
    with pytest.raises(DlbenchError, match="unknown bias mode 'ones'"):
        verification_weights("lenet", 0, "ones")
    with pytest.raises(DlbenchError, match="unknown bias mode"):
        evaluate_adapter(NumpyAdapter(), LSTM, ("plain",), batch_size=2, biases="ones")


def verdict(adapter: NumpyAdapter, biases: str) -> tuple[str, tuple[str, ...], set[str]]:
    results = evaluate_adapter(adapter, LSTM, ("plain",), batch_size=2, biases=biases)
    assert [r.status for r in results] == [OK] and results[0].biases == biases
    report = verify_all(LSTM, results, batch_size=2, biases=biases)
    target = report.targets[0]
    failing = {e.tensor for c in target.comparisons for e in c.errors if not e.ok}
    return report.verdict, target.problems, failing


def doubled_lstm_bias(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyTorch's nn.LSTM has two biases; copying the canonical one into both adds it twice."""
    return {**weights, "lstm.bias": 2 * weights["lstm.bias"]}


def unloaded_lstm_bias(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The bias is never copied: the framework's own zero initialisation stays."""
    return {**weights, "lstm.bias": np.zeros_like(weights["lstm.bias"])}


BLIND_SPOT: dict[str, WeightMap] = {
    "gate blocks i<->f": permute_lstm_bias_gates((1, 0, 2, 3))[0],
    "gate blocks rotated": permute_lstm_bias_gates((1, 2, 3, 0))[0],
    "bias added twice": doubled_lstm_bias,
    "bias never loaded": unloaded_lstm_bias,
}


@pytest.mark.parametrize("bug", list(BLIND_SPOT))
def test_misloaded_lstm_bias_passes_canonical_and_fails_random(bug: str) -> None:
    """The bias is loaded wrongly; its gradient comes back from the framework's own bias slots, which hold
    the canonical gates (the kernels are right), so it is reported under the right canonical blocks."""
    adapter = NumpyAdapter("misloaded", weights_in=BLIND_SPOT[bug], gradients_out=identity)
    blind, problems, failing = verdict(adapter, CANONICAL)
    assert blind == PASS and not problems and not failing  # the blind spot: zero biases hide the bug
    seen, problems, failing = verdict(adapter, RANDOM)
    assert seen == FAIL
    assert len(problems) == 1 and problems[0].startswith("misloaded/plain disagrees with the NumPy reference")
    assert {"output", "lstm.bias gradient"} <= failing


def test_consistently_permuted_bias_is_caught_by_its_gradient_in_both_modes() -> None:
    """Un-permuting the gradient on the way back (the inverse of the faulty load) reports the gradient of gate
    k under gate order[k]: the bias gradient is wrong even at zero biases, where the output is still exact."""
    weights_in, gradients_out = permute_lstm_bias_gates((1, 2, 3, 0))
    adapter = NumpyAdapter("permuted", weights_in=weights_in, gradients_out=gradients_out)
    for biases in (CANONICAL, RANDOM):
        result, _, failing = verdict(adapter, biases)
        assert result == FAIL and "lstm.bias gradient" in failing, biases
    assert verdict(adapter, CANONICAL)[2] == {"lstm.bias gradient"}
    assert "output" in verdict(adapter, RANDOM)[2]


def test_implementation_with_other_biases_than_the_reference_is_an_error_not_a_comparison() -> None:
    results = evaluate_adapter(NumpyAdapter(), LSTM, ("plain",), batch_size=2, biases=CANONICAL)
    report = verify_all(LSTM, results, batch_size=2, biases=RANDOM)
    target = report.targets[0]
    assert report.verdict == VERDICT_ERROR and target.comparisons == ()
    assert target.implementations[0].status == ERROR
    assert target.problems == ("numpy/plain: evaluated with canonical biases, the reference with random biases",)


@pytest.mark.parametrize("biases", [CANONICAL, RANDOM])
def test_the_bias_mode_is_in_the_json_and_the_table_header(biases: str) -> None:
    results = evaluate_adapter(NumpyAdapter(), [Target("autoencoder", "pretrain1")], ("plain",), 2, biases=biases)
    report = verify_all([Target("autoencoder", "pretrain1")], results, batch_size=2, biases=biases)
    assert report.verdict == PASS
    assert json.loads(to_json(report))["biases"] == biases
    out = io.StringIO()
    print_table(report, Console(file=out, width=200, color_system=None))
    lines = out.getvalue().splitlines()
    assert f"(--biases {biases})" in lines[0]  # the first line says which weights every table is about
    assert lines[-1].startswith("verify: PASS") and f"{biases} biases, float32)" in lines[-1]
