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


OWN = "keras:examples.keras_lenet:build_model"  # the same LeNet as a model of its own: definition derived from it


def test_a_model_of_its_own_runs_on_the_keras_backends_and_they_agree(tmp_path: Path) -> None:
    out = tmp_path / "own"
    proc = run_cli("run", "--workload", OWN, "--threads", "1", "--batch-size", "2", "--max-time", "0.2",
                   "--min-samples", "3", "--output", str(out), "--quiet", timeout=900)
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert proc.returncode == 0, proc.stderr[-2000:]
    # only the Keras backends build it; its definition (parameters, MACs) is derived from the model
    assert {(r["framework"], r["pass"]) for r in rows} == {(f, p) for f in KERAS for p in ("forward", "gradient")}
    assert all(r["status"] == "ok" and r["workload"] == OWN and r["params"] == "431080"
               and r["macs"] == "2293000" for r in rows), rows
    proc = run_cli("verify", "--workload", OWN, "--framework", ",".join(KERAS), "--threads", "1",
                   "--format", "json", timeout=900)
    report = json.loads(proc.stdout)
    expected = "pass" if len(KERAS) > 1 else "error"  # one backend alone has nothing to be compared with
    assert report["verdict"] == expected, (proc.stdout[-3000:], proc.stderr[-2000:])


def test_a_model_of_its_own_that_cannot_be_built_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken_net.py").write_text("def build():\n    raise ValueError('no layers yet')\n"
                                            "def number():\n    return 42\n")
    for function, fragment in (("build", "raised ValueError: no layers yet"),
                               ("number", "returned int, not a Keras 3 keras.Model"),
                               ("missing", "has no attribute 'missing'")):
        proc = run_cli("run", "--workload", f"keras:broken_net:{function}", "--quiet", cwd=tmp_path)
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
