"""The environment table: runs side by side, every key optional, calibration shown with a busy warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlbench.errors import StoreError
from dlbench.report.env_table import environment_table, packages_table, text
from dlbench.report.frame import load_runs
from tests.report_fixtures import cases, make_environment, make_run


def facts(table) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return {row[0].text: [cell.text for cell in row[1:]] for row in table.rows}


def test_runs_side_by_side_with_hardware_versions_and_calibration(tmp_path: Path) -> None:
    env = make_environment(calibration={"1": 100.0, "2": 190.0},
                           gpus=[{"index": 0, "name": "NVIDIA A100", "driver": "550", "memory_mb": 40960}])
    env["calibration"]["2"]["cpu_per_wall"] = 1.1  # two pinned threads that got about one core
    env["calibration"]["1"]["cpu_per_wall"] = 0.99
    a = make_run(tmp_path / "a", cases(threads=(1,)), run_id="a", environment=env)
    b = make_run(tmp_path / "b", [], run_id="b", environment={"host": {"hostname": "old"}})
    table = environment_table(load_runs([a, b]))
    assert table.header == ("", "bench-1 / a", "old / b")
    found = facts(table)
    assert found["CPU"] == ["AMD EPYC 7B13", "—"]
    assert found["GPU"] == ["NVIDIA A100 (40960 MB, driver 550)", "none"]
    assert found["cores"] == ["2 logical, 2 physical, affinity 0, 1", "—"]
    assert found["git commit"] == ["0123456789ab", "—"]
    assert found["cases"] == ["8 timed of 8", "0 timed of 0"]
    assert found["matmul peak (float32)"][0] == (
        "1 thread(s): 100.0 GFLOP/s; 2 thread(s): 190.0 GFLOP/s (machine busy: CPU/wall 1.10)")
    assert found["matmul peak (float32)"][1] == "not calibrated"
    assert found["alpha"][0] == "version alpha-1.0; threads: 1; devices: cpu; backends: blas=openblas"
    assert found["alpha"][1] == "—"
    assert list(table.data.columns) == ["fact", "bench-1 / a", "old / b"]


def test_an_empty_environment_record_shows_dashes(tmp_path: Path) -> None:
    env = {"host": {}, "gpus": [], "calibration": {"1": {"gflops": 12.5}}, "packages": {"numpy": ""}}
    run = make_run(tmp_path / "r", [], environment=env)
    found = facts(environment_table(load_runs([run])))
    assert found["CPU"] == ["—"] and found["GPU"] == ["none"]
    assert found["matmul peak (float32)"] == ["1 thread(s): 12.5 GFLOP/s"]
    assert facts(packages_table(load_runs([run]))) == {"numpy": ["—"]}


def test_junk_in_a_stored_environment_is_one_clear_error(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [])
    data = json.loads((run / "run.json").read_text())
    data["environment"]["calibration"] = {"1": {"gflops": "fast"}}
    (run / "run.json").write_text(json.dumps(data))
    with pytest.raises(StoreError, match=r"environment\.calibration\[\.\.\.\]\.gflops: expected `float`"):
        load_runs([run])


def test_text_flattens_json_values() -> None:
    assert text({"a": 1, "b": [1, 2]}) == "a=1, b=1, 2"
    assert text(None) == text("") == text([]) == "—"
    assert text(3.5) == "3.5"


def test_a_gpu_is_shown_with_what_nvml_said_and_what_it_refused(tmp_path: Path) -> None:
    gpu = {"index": 0, "name": "NVIDIA A100", "driver": "550.54", "memory_mb": 40960, "uuid": "GPU-aaaa",
           "compute_capability": "8.0", "cuda_driver": "12.4", "mig_mode": "enabled",
           "errors": {"power_limit_w": "NVMLError_NoPermission", "pci_bus_id": "NVMLError_NoPermission"}}
    env = make_environment(gpus=[gpu])
    env["calibration_gpu"] = {"float32": {"gflops": 19012.4, "library": "torch 2.13.0"}}
    found = facts(environment_table(load_runs([make_run(tmp_path / "a", [], run_id="a", environment=env)])))
    assert found["GPU"] == ["NVIDIA A100 (40960 MB, driver 550.54, GPU-aaaa, compute capability 8.0, CUDA 12.4, "
                            "MIG enabled, not readable: pci_bus_id, power_limit_w)"]
    assert found["matmul peak (GPU)"] == ["float32: 19012 GFLOP/s (torch 2.13.0)"]
