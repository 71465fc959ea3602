"""The adapter contract is checked once, in the base class, for every adapter (here the fake one)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from dlbench.errors import SuiteError
from dlbench.frameworks.base import (
    Adapter,
    BuildRequest,
    BuiltCase,
    CaseUnavailable,
    ContractError,
    ParamCountError,
)
from dlbench.frameworks.fake import FakeAdapter, FakeCase
from dlbench.frameworks.registry import adapter_names, get_adapter
from dlbench.workloads import check_pass, get_workload, initial_weights, make_batch


def request(workload: str = "lenet", phase: str = "", **changes: Any) -> BuildRequest:
    base = BuildRequest(workload=get_workload(workload), phase=phase, batch=make_batch(workload, 2, 0),
                        weights=initial_weights(workload, 0), variant="default", device="cpu")
    return replace(base, **changes)


class MiscountingAdapter(FakeAdapter):
    """The fake adapter with a model that trains ``extra`` scalars too many."""

    def __init__(self, extra: int) -> None:
        super().__init__()
        self.extra = extra
        self.closed: list[BuiltCase] = []

    def _build(self, request: BuildRequest) -> BuiltCase:
        adapter = self

        class Miscounted(FakeCase):
            @property
            def trainable_params(self) -> int:
                return super().trainable_params + adapter.extra

            def close(self) -> None:
                adapter.closed.append(self)

        return Miscounted(request, 1, None)


@pytest.fixture
def fake() -> FakeAdapter:
    adapter = FakeAdapter()
    adapter.initialize("cpu", 1)
    return adapter


def test_a_valid_request_builds(fake: FakeAdapter) -> None:
    built = fake.build(request("autoencoder", "pretrain2"))
    assert built.trainable_params == get_workload("autoencoder").trainable_params("pretrain2")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"variant": "turbo"}, "unknown Fake (cost model) variant 'turbo'; variants: default, fast"),
        ({"device": "tpu"}, "unknown device 'tpu'; devices: cpu, gpu"),
        ({"phase": "pretrain1"}, "no phase 'pretrain1'"),
    ],
)
def test_a_request_naming_no_case_is_a_suite_error(fake: FakeAdapter, changes: dict[str, Any],
                                                   message: str) -> None:
    with pytest.raises(SuiteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fake.build(request(**changes))


def test_another_precision_is_unavailable_not_an_error(fake: FakeAdapter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeAdapter, "precisions", ("float32",))
    with pytest.raises(CaseUnavailable, match="runs float32 only, not bf16"):
        fake.build(request(precision="bf16"))
    with pytest.raises(CaseUnavailable, match="GPU tensor-core mode"):  # checked before the adapter's list
        fake.build(request(precision="tf32"))


def test_an_unknown_precision_is_a_suite_error(fake: FakeAdapter) -> None:
    with pytest.raises(SuiteError, match="unknown precision 'bfloat16'"):
        fake.build(request(precision="bfloat16"))


def test_weights_must_be_complete_and_canonical(fake: FakeAdapter) -> None:
    weights = dict(initial_weights("lenet", 0))
    transposed = {**weights, "fc1.kernel": weights["fc1.kernel"].T}
    with pytest.raises(ContractError, match=r"'fc1.kernel' has shape \(500, 800\), canonical \(800, 500\)"):
        fake.build(request(weights=transposed))
    del weights["conv2.bias"]
    with pytest.raises(ContractError, match="lack 'conv2.bias'"):
        fake.build(request(weights=weights))


def test_a_wrong_parameter_count_is_refused_and_the_model_released() -> None:
    adapter = MiscountingAdapter(extra=10)
    with pytest.raises(ParamCountError, match="431,090 trainable parameters, the canonical count is 431,080") as info:
        adapter.build(request())
    assert (info.value.built, info.value.canonical) == (431_090, 431_080)
    assert isinstance(info.value, ContractError) and len(adapter.closed) == 1


def test_initialize_checks_device_and_threads() -> None:
    with pytest.raises(SuiteError, match="unknown device 'tpu'"):
        FakeAdapter().initialize("tpu", 1)
    with pytest.raises(SuiteError, match="threads must be at least 1, not 0"):
        FakeAdapter().initialize("cpu", 0)


def test_pass_names_are_checked_in_one_place() -> None:
    check_pass("forward")
    check_pass("gradient")
    with pytest.raises(SuiteError, match="unknown pass 'backward'; passes: forward, gradient"):
        check_pass("backward")


def test_no_registered_adapter_bypasses_the_checks() -> None:
    """``build`` and ``initialize`` are final: an adapter implements ``_build`` and ``_initialize``."""
    for name in adapter_names(include_hidden=True):
        cls = type(get_adapter(name))
        assert cls.build is Adapter.build and cls.initialize is Adapter.initialize, name


def test_every_phase_reads_what_it_trains_plus_its_frozen_inputs() -> None:
    auto = get_workload("autoencoder")
    assert auto.phase("pretrain2").reads == ("enc1.kernel", "enc1.bias", "enc2.kernel", "enc2.bias", "dec2.bias")
    assert auto.phase("finetune").frozen == ()
    lenet = get_workload("lenet")
    assert set(lenet.phase("").reads) == {p.name for p in lenet.params}
    assert np.sum([lenet.param(n).size for n in lenet.phase("").reads]) == lenet.trainable_params()


def test_a_failing_release_does_not_hide_the_wrong_count() -> None:
    class BrokenClose(MiscountingAdapter):
        def _build(self, request: BuildRequest) -> BuiltCase:
            built = super()._build(request)

            def close() -> None:
                raise RuntimeError("cannot release")

            built.close = close  # type: ignore[method-assign]
            return built

    with pytest.raises(ParamCountError):
        BrokenClose(extra=1).build(request())


def test_every_workload_builds_in_mixed_precision(fake: FakeAdapter) -> None:
    for workload in ("transformer", "lstm"):
        assert fake.build(request(workload, precision="bf16")).dtypes() == {"activation": "bfloat16",
                                                                            "output": "bfloat16"}


def test_a_case_whose_dtypes_contradict_the_precision_is_released_and_unavailable(
        fake: FakeAdapter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLBENCH_FAKE_FAULTS", "float32:*")  # the model silently computes in float32
    with pytest.raises(CaseUnavailable, match="computed in float32"):
        fake.build(request(precision="bf16", case_key="lenet/-/forward/fake/default/cpu/t1/b2/bf16"))


def test_fake_slow_down_multiplies_the_whole_pass_of_the_matching_cases(
        fake: FakeAdapter, monkeypatch: pytest.MonkeyPatch) -> None:
    """DLBENCH_FAKE_SLOW scales every unit of work of a matching case, its per-call overhead included, so
    a requested 10% slow-down is exactly 10% (benchmarks/ab_calibration.py measures compare's power with
    it); other cases are untouched."""
    import dlbench.frameworks.fake as fake_module

    spun: list[int] = []
    monkeypatch.setattr(fake_module, "spin", lambda units: spun.append(units) or 0)
    monkeypatch.setattr(fake_module, "NOISE_SIGMA", 0.0)
    units = {}
    for setting in ("", "lenet/*/gradient/*=1.1,*=3"):
        monkeypatch.setenv("DLBENCH_FAKE_SLOW", setting)
        for key in ("lenet/-/gradient/fake/default/cpu/t1/b2/float32",
                    "lenet/-/forward/fake/default/cpu/t1/b2/float32"):
            run = fake.build(request(case_key=key)).prepare(key.split("/")[2])
            spun.clear()
            run()
            units[setting, key.split("/")[2]] = spun[-1]
    assert units["lenet/*/gradient/*=1.1,*=3", "gradient"] == pytest.approx(1.1 * units["", "gradient"], abs=3)
    assert units["lenet/*/gradient/*=1.1,*=3", "forward"] == pytest.approx(3 * units["", "forward"], abs=3)
    assert fake_module.slow_factor("x", {}) == 1.0
