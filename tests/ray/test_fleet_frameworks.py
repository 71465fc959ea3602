"""A real framework's smoke cases on the local Ray cluster: the same pinned worker as a local run, per node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dlbench.frameworks.registry import get_adapter
from dlbench.record.store import load_run
from tests.conftest import run_cli

pytestmark = [pytest.mark.ray, pytest.mark.integration]


def test_torch_smoke_cases_spread_over_the_cluster(cluster: Any, tmp_path: Path) -> None:
    if not get_adapter("torch").is_installed():
        pytest.skip("torch is not installed")
    out = tmp_path / "run"
    proc = run_cli("run", "--executor", "ray", "--address", cluster.address, "-s", "smoke", "-f", "torch",
                   "-w", "lenet,autoencoder", "-d", "cpu", "-o", str(out), "-q", timeout=900)
    assert proc.returncode == 0, proc.stderr
    record = load_run(out)
    workers = {node.node_id for node in cluster.worker_nodes}
    assert len(record.results) == 10  # lenet + autoencoder's four phases, forward and gradient
    assert all(r.status == "ok" and r.node_id in workers for r in record.results)
    assert all(r.threads_effective == 1 and len(r.affinity) == 1 for r in record.results)
    assert record.environment.frameworks["torch"].version
    node_envs = record.environment.nodes.values()
    assert {n["node_id"] for n in node_envs} <= workers
    assert all(n["workers"]["torch/cpu/t1"]["framework"] == "torch" for n in node_envs if n.get("workers"))
