"""A local Ray cluster for the fleet tests: a head that runs nothing and two one-CPU worker nodes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

WORKER_RESOURCES = {"bench_host": 1}


def add_worker(cluster: Cluster) -> Any:
    return cluster.add_node(num_cpus=1, resources=WORKER_RESOURCES)


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    """Shared by every test of the package (starting one takes ~20 s on a busy 2-core machine); the tests
    that kill a node add a fresh one afterwards."""
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    add_worker(made)
    add_worker(made)
    made.wait_for_nodes()
    yield made
    made.shutdown()


def kill_node(cluster: Cluster, node: Any) -> None:
    """A node dying as a machine does: its raylet and every process under it (the agent and its worker)
    go at once, not Ray's graceful shutdown that lets running actors finish."""
    raylet = node.all_processes["raylet"][0].process.pid
    try:
        victims = psutil.Process(raylet).children(recursive=True)
    except psutil.NoSuchProcess:
        victims = []
    for proc in victims:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    cluster.remove_node(node, allow_graceful=False)
