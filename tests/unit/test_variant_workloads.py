"""Variants made for one workload (the attention implementations of the transformer) are planned, built and
verified on that workload only; elsewhere they are unavailable, never a duplicate of another variant."""

from __future__ import annotations

import pytest

from dlbench.frameworks.base import BuildRequest, CaseUnavailable
from dlbench.frameworks.jax.adapter import JaxAdapter
from dlbench.frameworks.tensorflow.adapter import TensorFlowAdapter
from dlbench.frameworks.torch.adapter import TorchAdapter
from dlbench.plan.planner import make_plan
from dlbench.plan.suite import Overrides
from dlbench.workloads import get_workload, initial_weights, make_batch

ATTENTION = {TorchAdapter: "plain_attention", JaxAdapter: "plain_attention", TensorFlowAdapter: "keras_attention"}


@pytest.mark.parametrize("adapter_type", list(ATTENTION))
def test_attention_variants_apply_to_the_transformer_only(adapter_type: type) -> None:
    adapter, variant = adapter_type(), ATTENTION[adapter_type]
    assert variant in adapter.variants and variant != adapter.default_variant
    assert adapter.applies(variant, "transformer") and not adapter.applies(variant, "lenet")
    assert adapter.applies(adapter.default_variant, "lenet")
    request = BuildRequest(get_workload("lenet"), "", make_batch("lenet", 1), initial_weights("lenet"), variant, "cpu")
    with pytest.raises(CaseUnavailable, match="applies to transformer only"):
        adapter.check_request(request)  # before any framework import


def test_plans_leave_attention_variants_out_of_other_workloads() -> None:
    plan = make_plan("smoke", Overrides(frameworks=("torch", "jax", "tensorflow"), variants=("all",),
                                        devices=("cpu",)))
    pairs = {(c.framework, c.variant, c.workload) for c in plan.cases}
    for framework, variant in (("torch", "plain_attention"), ("jax", "plain_attention"),
                               ("tensorflow", "keras_attention")):
        assert {w for f, v, w in pairs if (f, v) == (framework, variant)} == {"transformer"}
    assert ("torch", "eager", "transformer") in pairs and ("torch", "eager", "lenet") in pairs


LSTM_STRATEGIES = {TorchAdapter: "lstm_cell", TensorFlowAdapter: "keras_lstm"}


@pytest.mark.parametrize("adapter_type", list(LSTM_STRATEGIES))
def test_lstm_strategy_variants_apply_to_the_lstm_only(adapter_type: type) -> None:
    adapter, variant = adapter_type(), LSTM_STRATEGIES[adapter_type]
    assert adapter.applies(variant, "lstm") and not adapter.applies(variant, "lenet")
    assert "fused" in adapter.variant_help[variant]  # the help says which strategy it is
    request = BuildRequest(get_workload("lenet"), "", make_batch("lenet", 1), initial_weights("lenet"), variant, "cpu")
    with pytest.raises(CaseUnavailable, match="applies to lstm only"):
        adapter.check_request(request)
