"""One Keras 3 model on three backends, through the commands a user types: the example Keras LeNet
(``examples/keras_lenet.py``) given as ``--workload keras:lenet=examples.keras_lenet:build_model`` runs on
``keras-jax``, ``keras-tensorflow`` and ``keras-torch`` in the rows of the native LeNet, and ``dlbench verify``
passes it against the NumPy reference. Tiny batches and short sampling: this is a correctness test."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

BACKENDS = [b for b in ("jax", "tensorflow", "torch") if importlib.util.find_spec(b) is not None]
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(importlib.util.find_spec("keras") is None or not BACKENDS,
                                 reason="keras 3 and a backend are not installed")]

MODEL = "keras:lenet=examples.keras_lenet:build_model"
KERAS = [f"keras-{b}" for b in BACKENDS]


def test_the_keras_lenet_runs_on_every_backend_beside_the_native_lenet(tmp_path: Path) -> None:
    out = tmp_path / "run"
    frameworks = ",".join([*BACKENDS, *KERAS])
    proc = run_cli("run", "--workload", MODEL, "--framework", frameworks, "--threads", "1", "--batch-size", "2",
                   "--max-time", "0.2", "--min-samples", "3", "--output", str(out), "--quiet", timeout=900)
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {(r["framework"], r["pass"]) for r in rows} == {
        (f, p) for f in [*BACKENDS, *KERAS] for p in ("forward", "gradient")}
    assert all(r["status"] == "ok" and r["workload"] == "lenet" and r["params"] == "431080" for r in rows), rows
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["suite"]["workloads"] == [MODEL]  # kept as given: a --resume builds the same model


def test_verify_passes_the_keras_lenet_against_the_reference() -> None:
    proc = run_cli("verify", "--workload", MODEL, "--framework", ",".join(KERAS), "--threads", "1",
                   "--format", "json", timeout=900)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-2000:])
    assert report["verdict"] == "pass"
    [target] = report["targets"]
    assert {i["framework"] for i in target["implementations"] if i["status"] == "ok"} == set(KERAS)
