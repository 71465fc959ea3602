"""``dlbench verify`` on the command line: selection, bad input (exit 2), and the exit code of a verdict.

No real framework is needed: the hidden fake adapter goes through the isolated worker and comes back as
error lines (it computes no model), and NumPy-only checks run with no framework selected.
"""

from __future__ import annotations

import json
from typing import Any

import click
import pytest

from dlbench.cli import COMMANDS, verify_cmd
from dlbench.cli.verify_cmd import command
from dlbench.errors import DlbenchError
from dlbench.verify.collect import ImplResult, Target, evaluate_adapter
from dlbench.verify.selection import make_plan, parse_targets
from tests.conftest import assert_one_line_error, network_phases, run_cli
from tests.verify_fixtures import NumpyAdapter, permute_lstm_bias_gates


def invoke(*args: str) -> int:
    return command.main(args=list(args), standalone_mode=False)  # type: ignore[no-any-return]


def test_targets_default_to_every_phase_and_accept_single_phases() -> None:
    everything = parse_targets([])
    assert len(everything) == network_phases() and Target("autoencoder", "pretrain3") in everything
    assert parse_targets(["autoencoder/pretrain2", "lenet", "autoencoder/pretrain2"]) == (
        Target("autoencoder", "pretrain2"),
        Target("lenet", ""),
    )
    assert len(parse_targets(["autoencoder"])) == 4


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("-w", "vgg16"), "unknown workload 'vgg16'"),
        (("-w", "autoencoder/pretrain9"), "no phase 'pretrain9'"),
        (("-f", "caffe"), "unknown framework 'caffe'"),
        (("-f", "fake", "--variant", "turbo"), "unknown variant 'turbo'"),
    ],
)
def test_bad_input_raises_a_one_line_error(args: tuple[str, ...], fragment: str) -> None:
    with pytest.raises(DlbenchError, match=fragment):
        invoke(*args)


def test_bad_numbers_are_usage_errors() -> None:
    with pytest.raises(click.UsageError):
        invoke("--batch-size", "0")
    with pytest.raises(click.UsageError):
        invoke("--format", "xml")


def test_variant_filter_skips_frameworks_without_it() -> None:
    plan = make_plan(["fake"], ["lenet"], ["fast"])
    assert [(f.name, f.variants) for f in plan.frameworks] == [("fake", ("fast",))]


def test_framework_errors_give_exit_code_1_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = invoke("-f", "fake", "-w", "autoencoder/pretrain3", "--format", "json")
    assert code == 1
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == "error"
    target = document["targets"][0]
    assert target["counts"]["reference_params"] == 20_300  # the reference still checked the definition
    # default and fast in one worker, isolated in a worker of its own (its variant_env), in variant order;
    # autotune exists on GPUs only: a CPU verify leaves it out and says so
    assert [(i["variant"], i["status"]) for i in target["implementations"]] == [
        ("default", "error"), ("fast", "error"), ("isolated", "error")]
    assert any("autotune" in note for note in document["notes"])
    assert all(p.startswith("fake/") for p in target["problems"])


def test_registered_command_maps_bad_input_to_exit_2() -> None:
    if "verify" not in COMMANDS:
        pytest.skip("verify is not registered in dlbench.cli yet")
    assert_one_line_error(run_cli("verify", "-w", "vgg16"), "unknown workload 'vgg16'")
    assert_one_line_error(run_cli("verify", "-b", "0"), "0")


def test_biases_option_reaches_the_workers_the_reference_and_the_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole command with an LSTM model whose bias gate blocks are loaded in the wrong order (its
    gradients come back through the right slots), evaluated in process instead of in a worker: zero
    canonical biases hide the bug, the default random biases expose it."""
    weights_in, _ = permute_lstm_bias_gates((1, 0, 2, 3))
    asked: list[str] = []

    def in_process(framework: str, targets: Any, variants: Any, batch_size: int, seed: int, device: str,
                   threads: int, timeout_s: float, biases: str, precision: str = "float32",
                   convs: Any = ("native",)) -> list[ImplResult]:
        asked.append(biases)
        adapter = NumpyAdapter(framework, weights_in=weights_in, variants=tuple(variants))
        return evaluate_adapter(adapter, targets, variants, batch_size, seed, device, threads, biases=biases)

    monkeypatch.setattr(verify_cmd, "evaluate_isolated", in_process)
    documents = {}
    for biases in ("canonical", None):
        args = ["-f", "fake", "--variant", "default", "-w", "lstm", "--format", "json"]
        code = invoke(*args, *(["--biases", biases] if biases else []))
        documents[biases or "default"] = (code, json.loads(capsys.readouterr().out))
    assert asked == ["canonical", "random"]
    code, document = documents["canonical"]
    assert (code, document["biases"], document["verdict"]) == (0, "canonical", "pass")
    code, document = documents["default"]
    assert (code, document["biases"], document["verdict"]) == (1, "random", "fail")
    problems = document["targets"][0]["problems"]
    assert len(problems) == 1 and problems[0].startswith("fake/default disagrees with the NumPy reference")


def test_unknown_bias_mode_is_a_usage_error() -> None:
    with pytest.raises(click.UsageError):
        invoke("--biases", "ones")
