"""``dlbench verify -w transformer`` on the real frameworks, and three wrong transformers in a real one.

* Every installed framework passes with every variant of the transformer (fused and plain attention, Keras
  MultiHeadAttention, compiled and eager), at batch 2 with a padded sequence, with random biases.
* A real framework (the cheapest installed, in this process) computing a wrong transformer fails verify, and
  the failure names it: its attention without the 1/sqrt(head_dim) scale, with the padding mask on the
  queries instead of the keys, or with the tanh-approximated GELU. The wrong function is swapped into the
  adapter module only while the wrong twin builds and evaluates; the framework really computes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from unittest.mock import patch

import pytest
from click.testing import CliRunner

from dlbench.cli.verify_cmd import command
from dlbench.frameworks.base import Adapter, BuildRequest, BuiltCase, Evaluation, RuntimeInfo
from dlbench.frameworks.registry import get_adapter
from dlbench.verify.collect import OK, Target, evaluate_adapter
from dlbench.verify.judge import FAIL, verify_all
from tests.verify_fixtures import DelegatingCase

pytestmark = pytest.mark.integration

FRAMEWORKS = [name for name in ("torch", "tensorflow", "jax") if get_adapter(name).is_installed()]
TARGET = Target("transformer")


def test_every_framework_and_variant_passes() -> None:
    if not FRAMEWORKS:
        pytest.skip("no framework installed")
    result = CliRunner().invoke(command, ["-f", ",".join(FRAMEWORKS), "-w", "transformer", "--format", "json",
                                          "--batch-size", "2"])
    document = json.loads(result.stdout)
    (target,) = document["targets"]
    assert result.exit_code == 0 and target["verdict"] == "pass", target["problems"]
    evaluated = {(i["framework"], i["variant"]) for i in target["implementations"]}
    assert evaluated == {(n, v) for n in FRAMEWORKS for v in get_adapter(n).variants
                         if get_adapter(n).applies(v, "transformer")
                         and "cpu" in get_adapter(n).variant_devices.get(v, ("cpu",))}  # GPU switches left out
    assert all(i["status"] == "ok" and i["trainable_params"] == 5_752_834 for i in target["implementations"])


class WrongCase(DelegatingCase):
    def __init__(self, inner: BuiltCase, wrong: Callable[[], AbstractContextManager[None]]) -> None:
        super().__init__(inner)
        self.wrong = wrong

    def evaluate(self) -> Evaluation:
        with self.wrong():  # JAX and TF trace here: the wrong function must be in place
            return self.inner.evaluate()

    def close(self) -> None:
        self.inner.close()


class WrongAdapter(Adapter):
    module = "dlbench"
    distributions = ("dlbench",)
    display_name = "wrong"

    def __init__(self, inner: Adapter, name: str, wrong: Callable[[], AbstractContextManager[None]]) -> None:
        self.inner, self.wrong = inner, wrong
        self.name = name  # type: ignore[misc]
        self.variants = (inner.default_variant,)  # type: ignore[misc]
        self.default_variant = inner.default_variant  # type: ignore[misc]

    def _initialize(self, device: str, threads: int) -> RuntimeInfo:
        return self.inner.initialize(device, threads)

    def _build(self, request: BuildRequest) -> BuiltCase:
        with self.wrong():
            return WrongCase(self.inner.build(request), self.wrong)


def torch_wrong_models() -> dict[str, Callable[[], AbstractContextManager[None]]]:
    import torch
    import torch.nn.functional as F

    import dlbench.frameworks.torch.transformer as torch_

    def no_scale(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=1.0)

    def query_mask(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        bias = torch.where(keep.transpose(-1, -2), 0.0, -1e9)  # [N, 1, T, 1]: padded queries, not keys
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)

    return {
        "noscale": lambda: patch.object(torch_, "fused_attention", no_scale),
        "querymask": lambda: patch.object(torch_, "fused_attention", query_mask),
        "tanhgelu": lambda: patch.object(torch_, "gelu", lambda x: F.gelu(x, approximate="tanh")),
    }


def test_wrong_transformers_in_a_real_framework_fail_and_are_named() -> None:
    if "torch" not in FRAMEWORKS:
        pytest.skip("torch is not installed")
    real = get_adapter("torch")
    results = evaluate_adapter(real, [TARGET], (real.default_variant,), batch_size=2, threads=2)
    wrong = torch_wrong_models()
    for name, swap in wrong.items():
        results += evaluate_adapter(WrongAdapter(real, name, swap), [TARGET], (real.default_variant,), batch_size=2,
                                    threads=2)
    assert all(r.status == OK for r in results), [r.error for r in results]
    report = verify_all([TARGET], results, batch_size=2)
    assert report.verdict == FAIL
    problems = report.targets[0].problems
    blamed = {p.split("/")[0] for p in problems if "disagrees with the NumPy reference" in p}
    assert blamed == set(wrong), problems
    assert not any(p.startswith("torch/") for p in problems), problems
