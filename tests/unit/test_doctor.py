"""dlbench doctor: the cheap CPU check list, and the GPU check (probe, smoke run, invariants) on the simulated
GPU with a fake NVML; the invariants themselves against hand-made records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlbench.cases.spec import Case
from dlbench.cli.doctor_cmd import FAIL, PASS, WARN, invariant_checks
from dlbench.record.results import CaseResult, Memory
from dlbench.record.schema import RunRecord
from tests.conftest import assert_one_line_error, run_cli, smoke_cases
from tests.regress_fixtures import make_environment, make_run
from tests.unit.test_gpu_record import fake_nvml_path


def test_cpu_doctor_lists_frameworks_and_cores() -> None:
    proc = run_cli("doctor")
    assert proc.returncode == 0, proc.stderr
    assert "core(s) available" in proc.stdout
    for name in ("torch", "tensorflow", "jax"):
        assert f"PASS  {name} " in proc.stdout


def test_gpu_doctor_without_a_gpu_is_one_line_and_exit_2() -> None:
    assert_one_line_error(run_cli("doctor", "--device", "gpu"), "no GPU here")


def test_gpu_doctor_on_the_simulated_gpu_passes(tmp_path: Path) -> None:
    proc = run_cli("doctor", "--device", "gpu", "--framework", "fake", "--output", str(tmp_path / "smoke"),
                   env={"DLBENCH_FAKE_GPU": "1", "PYTHONPATH": fake_nvml_path(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in ("PASS  GPU 0: NVIDIA A100-SXM4-40GB [GPU-fake]", "PASS  fake runs on the GPU",
                 "PASS  exit code 0 matches the rows", "PASS  device memory peak on every measured GPU row",
                 "PASS  device peak reset between cases", f"PASS  GPU telemetry on {smoke_cases()} of {smoke_cases()}",
                 "WARN  other processes on the GPU: GPU-fake: pid 4242", "doctor: all checks passed"):
        assert line in proc.stdout, proc.stdout
    assert (tmp_path / "smoke" / "run.json").is_file()


def test_gpu_doctor_with_a_broken_framework_fails(tmp_path: Path) -> None:
    proc = run_cli("doctor", "--device", "gpu", "--framework", "fake",
                   env={"DLBENCH_FAKE_GPU": "1", "DLBENCH_FAKE_FAULTS": "import:*"})
    assert proc.returncode == 1
    assert "FAIL  fake fails on the GPU: ImportError" in proc.stdout
    assert "FAIL  no framework runs on the GPU" in proc.stdout


def row(workload: str, peak: int | None, framework: str = "torch", status: str = "ok",
        precision: str = "float32", matmul: str = "float32", telemetry: dict[str, Any] | None = None) -> CaseResult:
    case = Case(workload, "", "forward", framework, "default", "gpu", 2, 8, precision)
    if status != "ok":
        return CaseResult(case=case, status=status, error="boom")
    return CaseResult(case=case, status="ok", samples_ms=(1.0, 1.1), iterations_per_sample=1,
                      memory=Memory(device_peak=peak), dtypes={"matmul": matmul},
                      gpu_telemetry=telemetry or {"n_samples": 3})


TF32_OFF = {"tf32": "off", "matmul_precision": "highest", "gpu_selector": "GPU-aaaa"}


def record(rows: list[CaseResult], settings: dict[str, str] | None = None,
           more: dict[str, Any] | None = None) -> RunRecord:
    workers = {"torch/gpu/t2": {"framework": "torch", "version": "2.13.0",
                                "settings": TF32_OFF if settings is None else settings}, **(more or {})}
    env = {**make_environment(), "workers": workers}
    env.pop("frameworks")
    return make_run("r", rows, env)


GOOD = [row("lenet", 50), row("alexnet", 900), row("autoencoder", 20), row("lstm", 70)]


def verdicts(code: int, data: RunRecord) -> dict[str, str]:
    return {check.text: check.verdict for check in invariant_checks(code, data)}


def test_a_good_gpu_record_passes_every_invariant() -> None:
    found = verdicts(0, record(GOOD))
    assert set(found.values()) == {PASS}, found


def test_a_peak_stuck_at_the_largest_case_fails() -> None:
    stuck = [row("lenet", 50), row("alexnet", 900), row("autoencoder", 900), row("lstm", 900)]
    assert verdicts(0, record(stuck))["device peak reset between cases; stuck at the largest case for torch"] == FAIL


def test_a_missing_device_peak_fails() -> None:
    rows = [*GOOD, row("transformer", None)]
    assert FAIL in [v for t, v in verdicts(0, record(rows)).items() if t.startswith("device memory peak")]


def test_tf32_left_on_fails_and_so_does_a_float32_row_in_tf32() -> None:
    found = verdicts(0, record(GOOD, {"tf32": "on", "matmul_precision": "high", "gpu_selector": "0"}))
    assert found["torch: TF32 not off (tf32=on, matmul_precision=high)"] == FAIL
    tf32_row = row("lstm", 70, matmul="tf32")
    leaked = verdicts(0, record([*GOOD[:3], tf32_row]))
    assert leaked[f"float32 rows computed in TF32: {tf32_row.case.key}"] == FAIL


def test_exit_code_must_match_the_rows() -> None:
    failed = [*GOOD, row("transformer", None, status="crashed")]
    assert verdicts(0, record(failed))["exit code 0, expected 1 for 1 failed row(s)"] == FAIL
    assert verdicts(1, record(failed))["exit code 1 matches the rows (1 failed)"] == PASS
    assert verdicts(1, record(GOOD))["exit code 1, expected 0 for 0 failed row(s)"] == FAIL


def test_every_row_unavailable_fails() -> None:
    rows = [row(w, None, status="unavailable") for w in ("lenet", "alexnet")]
    assert verdicts(0, record(rows))["no GPU row was measured (2 unavailable of 2)"] == FAIL


def test_more_than_one_gpu_fails() -> None:
    data = record(GOOD, {"tf32": "off", "gpu_selector": "0,1"})
    assert verdicts(0, data)["a GPU worker saw more or less than one GPU: torch/gpu/t2=0,1"] == FAIL
    two = record(GOOD, more={"jax/gpu/t2": {"framework": "jax", "settings": {"gpu_selector": "1"}}})
    assert any(t.startswith("GPU workers used different GPUs") and v == FAIL for t, v in verdicts(0, two).items())


def test_a_throttled_case_is_a_warning() -> None:
    hot = row("lstm", 70, telemetry={"throttled": True})
    assert verdicts(0, record([*GOOD[:3], hot]))[f"throttled while timed: {hot.case.key}"] == WARN
