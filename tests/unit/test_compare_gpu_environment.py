"""compare warns when the GPU software changed between two runs: driver, CUDA, cuDNN."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest

from dlbench.regress.env_diff import environment_differences
from tests.regress_fixtures import make_environment, make_run


def gpu_environment() -> dict[str, Any]:
    env = make_environment()
    env["gpus"] = [{"index": 0, "name": "NVIDIA A100", "driver": "550.54.15", "cuda_driver": "12.4"}]
    env["frameworks"]["torch"]["backends"] = {"cuda": "12.4", "cudnn": "90100"}
    env["gpu_probes"] = {"torch": {"loaded": {"cudnn": {"path": "/x/libcudnn.so.9", "version": "9.1.0"},
                                              "cudart": {"path": "/x/libcudart.so.12", "version": "12.4"}}}}
    return env


def differences(base: dict[str, Any], cur: dict[str, Any]) -> list[str]:
    return environment_differences(make_run("a", [], base), make_run("b", [], cur), {"torch"})


def test_same_gpu_software_gives_no_warning() -> None:
    assert differences(gpu_environment(), gpu_environment()) == []


def test_a_driver_update_is_a_warning() -> None:
    cur = gpu_environment()
    cur["gpus"][0].update(driver="560.28.03", cuda_driver="12.6")
    assert differences(gpu_environment(), cur) == [
        "GPU driver differs: 550.54.15 (baseline) vs 560.28.03 (current)",
        "CUDA driver version differs: 12.4 (baseline) vs 12.6 (current)",
    ]


def test_the_loaded_cudnn_is_compared_not_only_the_reported_one() -> None:
    cur = gpu_environment()
    cur["gpu_probes"]["torch"]["loaded"]["cudnn"]["version"] = "9.5.1"  # same wheel label, another library
    assert differences(gpu_environment(), cur) == ["torch cuDNN differs: 9.1.0 (baseline) vs 9.5.1 (current)"]


def test_without_probes_the_frameworks_own_report_is_compared() -> None:
    base, cur = gpu_environment(), gpu_environment()
    del base["gpu_probes"], cur["gpu_probes"]
    cur["frameworks"]["torch"]["backends"] = {"cuda": "12.8", "cudnn": "90100"}
    assert differences(base, cur) == ["torch CUDA differs: 12.4 (baseline) vs 12.8 (current)"]


def test_cpu_runs_and_odd_probe_findings_give_no_gpu_warning() -> None:
    odd = copy.deepcopy(gpu_environment())
    odd["gpu_probes"] = {"torch": {"loaded": "broken"}}  # probe findings are kept as found (plain JSON)
    odd["frameworks"]["torch"]["backends"] = {}
    odd["gpus"] = [{"index": 0}]  # a GPU that answered nothing else
    assert differences(make_environment(), make_environment()) == []
    assert not [w for w in differences(odd, make_environment()) if "driver" in w or "CUDA" in w or "cuDNN" in w]


def test_a_damaged_gpu_record_is_refused_when_read() -> None:
    damaged = copy.deepcopy(gpu_environment())
    damaged["gpus"] = [{"driver": None}, "junk"]
    with pytest.raises(msgspec.ValidationError, match=r"gpus\[0\]\.driver"):
        make_run("a", [], damaged)
