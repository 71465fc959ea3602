"""Rounds and the A/B environment axis with a real framework: ``--repeat 2`` and two ``--python``
environments (the same interpreter twice), then ``compare --within``."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.integration


def test_torch_repeat_two_in_two_environments_then_compare_within(tmp_path: Path) -> None:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    out = tmp_path / "ab"
    proc = run_cli("run", "--suite", "smoke", "--framework", "torch", "--device", "cpu", "--workload", "lenet",
                   "--pass", "forward", "--repeat", "2", "--python", f"base={sys.executable}",
                   "--python", f"head={sys.executable}", "--max-time", "0.5", "--quiet", "--output", str(out),
                   timeout=1500)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((out / "run.json").read_text())
    results = record["results"]
    assert sorted(r["environment"] for r in results) == ["base", "head"]
    assert all(r["status"] == "ok" and len(r["rounds"]) == 2 for r in results)
    for name in ("base", "head"):  # each environment's framework version, from its own workers
        workers = record["environment"]["environments"][name]["workers"].values()
        assert [w["framework"] for w in workers if w["version"]] == ["torch"]
    assert [c["round"] for c in record["environment"]["control"]] == [1, 2]
    proc = run_cli("compare", "--within", str(out), "base", "head", "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    verdicts = json.loads(proc.stdout)
    # one case: too few for a variance prior; --within pairs the samples both environments took in turn
    assert [c["timing"]["method"] for c in verdicts["cases"]] == ["round-sample-paired-t"]
    base, head = sorted(results, key=lambda r: r["environment"])
    for base_round, head_round in zip(base["rounds"], head["rounds"], strict=True):
        assert abs(base_round["n"] - head_round["n"]) <= 1  # they stopped together (see tests/unit/test_turns.py)
    assert verdicts["control_shift"] == 0.0  # one shared control: the sides cannot differ in it
    assert verdicts["memory_control_shift"] == 0.0
    assert all(c["gbps"] > 0 for c in record["environment"]["control"])  # the memory kernel, every round
