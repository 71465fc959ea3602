"""The transformer under bf16 in each real framework: it builds, computes in bfloat16 (dtype-checked by the
base class), and ``dlbench verify --precision bf16`` passes against the float64 reference and pairwise.

A tiny case: batch 1 (one padded sequence), the default variant and the variants that change the attention
(fused against plain softmax, Keras ``MultiHeadAttention``), one framework per test so that a failure names
its framework. fp16 runs only where the framework has CPU kernels for it (JAX here); elsewhere it must be a
reasoned ``unavailable``, never a silent float32 run.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from dlbench.cli.verify_cmd import command
from dlbench.frameworks.registry import get_adapter

pytestmark = pytest.mark.integration

FRAMEWORKS = [name for name in ("torch", "tensorflow", "jax") if get_adapter(name).is_installed()]
# the variants that change how the transformer computes under mixed precision (compile and eager are the
# default's code under another executor, covered by `dlbench verify -w transformer --precision bf16`)
VARIANTS = {"torch": "channels_last,plain_attention", "tensorflow": "function,keras_attention",
            "jax": "jit,plain_attention"}


def verify(framework: str, precision: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(command, ["-f", framework, "-w", "transformer", "--variant", VARIANTS[framework],
                                          "--precision", precision, "--batch-size", "1", "--format", "json"])
    document = json.loads(result.stdout)
    (target,) = document["targets"]
    return result.exit_code, target


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_bf16_transformer_passes_verify(framework: str) -> None:
    code, target = verify(framework, "bf16")
    reasons = {i.get("error") or "" for i in target["implementations"] if i["status"] == "unavailable"}
    if len(reasons) == 1 and "CPU" in next(iter(reasons)):  # no bf16 kernels on this CPU (torch, TensorFlow)
        pytest.skip(next(iter(reasons)))
    assert code == 0 and target["verdict"] == "pass", target["problems"]
    statuses = {i["variant"]: i["status"] for i in target["implementations"]}
    assert statuses == dict.fromkeys(VARIANTS[framework].split(","), "ok"), target["implementations"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_fp16_transformer_passes_verify_or_is_unavailable_with_a_reason(framework: str) -> None:
    code, target = verify(framework, "fp16")
    assert code == 0, target["problems"]
    for impl in target["implementations"]:
        assert impl["status"] in ("ok", "unavailable"), impl
        if impl["status"] == "unavailable":
            assert "float16" in impl["error"] or "fp16" in impl["error"], impl
