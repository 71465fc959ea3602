"""The smoke suite on every installed real framework, through the command a user types.

This is the 'done when' of the adapter issues: ``dlbench run --suite smoke --framework X --device cpu`` gives
``ok`` rows for every workload, phase and pass, with the canonical parameter counts, on one pinned core.
"""

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from dlbench.workloads import get_workload, networks
from tests.conftest import run_cli

pytestmark = pytest.mark.integration

FRAMEWORKS = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}
BUILTIN = {("lenet", ""), ("alexnet", ""), ("autoencoder", "pretrain1"), ("autoencoder", "pretrain2"),
           ("autoencoder", "pretrain3"), ("autoencoder", "finetune"), ("lstm", ""), ("transformer", "")}
# The smoke suite runs every registered network: the built-ins, and the installed workload plugins (the example
# ResNet in the project's venv).
EXPECTED = {(w.name, p) for w in networks().values() for p in w.phase_names}
assert BUILTIN <= EXPECTED


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_smoke_suite_runs_every_case_ok(framework: str, tmp_path: Path) -> None:
    if importlib.util.find_spec(FRAMEWORKS[framework]) is None:
        pytest.skip(f"{framework} is not installed")
    out = tmp_path / framework
    proc = run_cli("run", "--suite", "smoke", "--framework", framework, "--device", "cpu", "--output", str(out),
                   "--quiet", timeout=1500)
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    problems = [(r["key"], r["status"], r["error"]) for r in rows if r["status"] != "ok"]
    assert proc.returncode == 0 and not problems, (problems, proc.stderr[-2000:])
    assert {(r["workload"], r["phase"], r["pass"]) for r in rows} == {
        (w, p, s) for w, p in EXPECTED for s in ("forward", "gradient")}
    for row in rows:
        assert int(row["params"]) == get_workload(row["workload"]).trainable_params(row["phase"])
        assert row["affinity"] == "0" and row["threads_effective"] == "1"
        assert float(row["median_ms"]) > 0 and int(row["n_samples"]) >= 3
        assert float(row["first_call_ms"]) > 0
        assert row["framework_version"]
    record = json.loads((out / "run.json").read_text())
    info = record["environment"]["workers"][f"{framework}/cpu/t1"]
    assert info["threads"] == 1 and info["version"]


def test_workers_started_ahead_keep_their_threads_and_cores(tmp_path: Path) -> None:
    """Every installed framework at one and two threads: six workers, started ahead of their turn together
    (imported on every core, then pinned). Each one's threads all end on its own cores and each framework
    reports the thread count asked for, as for a worker started in its turn."""
    installed = [name for name, module in FRAMEWORKS.items() if importlib.util.find_spec(module) is not None]
    if len(installed) < 2:
        pytest.skip("needs two frameworks (workers are started ahead only when several are to run)")
    out = tmp_path / "ahead"
    proc = run_cli("run", "-w", "lenet", "-f", ",".join(installed), "--threads", "1,2", "-b", "4", "--pass",
                   "forward", "--device", "cpu", "--output", str(out), "--quiet", timeout=900)
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert proc.returncode == 0 and {r["status"] for r in rows} == {"ok"}, proc.stderr[-2000:]
    threads = sorted({int(r["threads"]) for r in rows})
    for row in rows:
        assert row["threads_effective"] == row["threads"]
        assert row["affinity"] == " ".join(str(core) for core in range(int(row["threads"])))
    workers = json.loads((out / "run.json").read_text())["environment"]["workers"]
    assert len(workers) == len(installed) * len(threads)
    for label, info in workers.items():
        settings = info["settings"]
        assert settings["started"].startswith("ahead of its turn"), label
        pinned, _, rest = settings["pinned"].partition(" of ")
        assert pinned == rest.split()[0], (label, settings["pinned"])  # every thread on the worker's cores
