"""A whole GPU run on the simulated GPU with a fake NVML library on the path of every process (parent, probe,
worker): the environment record names the GPU, each GPU case records its telemetry and a throttled one is
flagged, other processes on the GPU are warned about."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import ROOT, run_cli

FAKE_PYNVML = '''
from tests.fake_nvml import FakeDevice, fake_pynvml

_module = fake_pynvml([FakeDevice(uuid="GPU-fake", throttle=0x4, processes=[(4242, 2**30)])])
globals().update({k: v for k, v in vars(_module).items() if k.startswith(("nvml", "NVML"))})
'''


def fake_nvml_path(tmp_path: Path) -> str:
    (tmp_path / "nvml").mkdir()
    (tmp_path / "nvml" / "pynvml.py").write_text(FAKE_PYNVML)
    return os.pathsep.join([str(tmp_path / "nvml"), str(ROOT)])


def test_a_gpu_run_records_the_gpu_and_flags_a_throttled_case(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("run", "--suite", "smoke", "--framework", "fake", "--device", "gpu", "--workload", "lenet",
                   "--pass", "forward", "--output", str(out),
                   env={"DLBENCH_FAKE_GPU": "1", "PYTHONPATH": fake_nvml_path(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout + proc.stderr
    assert "warning: other processes are using the GPU" in said and "GPU-fake: pid 4242 (1024 MB)" in said
    assert "GPU throttled" in proc.stdout and "!" in proc.stdout.split("lenet")[-1]
    record = json.loads((out / "run.json").read_text())
    (gpu,) = record["environment"]["gpus"]
    assert gpu["uuid"] == "GPU-fake" and gpu["compute_capability"] == "8.0" and gpu["cuda_driver"] == "12.4"
    (result,) = record["results"]
    telemetry = result["gpu_telemetry"]
    assert telemetry["throttled"] is True and telemetry["throttle_reasons"] == {"sw_power_cap": 1.0}
    assert telemetry["sm_mhz"]["median"] == 1410 and telemetry["n_samples"] >= 2
    assert record["environment"]["gpu_probes"]["fake"]["devices"] == ["cpu", "gpu"]
