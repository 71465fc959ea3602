"""The example workload plugin (``examples/resnet_plugin``) on the real frameworks, through the commands a user
types: ``dlbench list`` shows it, the smoke suite runs it on every installed framework (a suite with no
``workloads`` key runs every registered network), and ``dlbench verify`` passes it against its own NumPy
reference in each framework's default variant. Skipped unless the plugin is installed (``make setup`` does)."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(importlib.util.find_spec("dlbench_resnet") is None,
                                 reason="the example plugin is not installed (pip install -e examples/resnet_plugin)")]

DEFAULTS = {"torch": "channels_last", "tensorflow": "function", "jax": "jit"}
INSTALLED = [f for f in DEFAULTS if importlib.util.find_spec(f) is not None]


def test_list_shows_the_plugin() -> None:
    proc = run_cli("list")
    assert proc.returncode == 0, proc.stderr
    assert any(line.split("│")[1].strip() == "resnet" for line in proc.stdout.splitlines() if "│" in line)


@pytest.mark.skipif(not INSTALLED, reason="no framework installed")
def test_smoke_suite_runs_the_plugin_on_every_framework(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli("run", "--suite", "smoke", "--framework", ",".join(INSTALLED), "--workload", "resnet",
                   "--device", "cpu", "--output", str(out), "--quiet", timeout=900)
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {(r["framework"], r["pass"]) for r in rows} == {(f, p) for f in INSTALLED for p in ("forward", "gradient")}
    assert all(r["status"] == "ok" and r["params"] == "19994" and r["batch_size"] == "2" for r in rows), rows


@pytest.mark.skipif(not INSTALLED, reason="no framework installed")
def test_verify_passes_the_plugin_against_its_reference() -> None:
    variants = ",".join(DEFAULTS[f] for f in INSTALLED)
    proc = run_cli("verify", "--workload", "resnet", "--framework", ",".join(INSTALLED), "--variant", variants,
                   "--format", "json", timeout=900)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-2000:])
    assert report["verdict"] == "pass"
