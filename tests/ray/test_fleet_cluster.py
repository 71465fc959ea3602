"""Fleet runs on a local Ray cluster (head + two one-CPU worker nodes) with the fake adapter.

The driver is the real ``dlbench run --executor ray`` command in a subprocess, as a user runs it, so that
killing it is a real driver death.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dlbench.errors import StoreError
from dlbench.record.journal import JournalWarning
from dlbench.record.store import load_run
from tests.conftest import ROOT, assert_one_line_error, run_cli
from tests.ray.conftest import add_worker, kill_node

pytestmark = pytest.mark.ray

SUITE = """
name = "fleet"
workloads = ["lenet", "lstm", "autoencoder/pretrain1"]
passes = ["forward", "gradient"]
frameworks = ["fake"]
[devices.cpu]
threads = [1]
batch_sizes = {{ lenet = [2, 4], lstm = [2], autoencoder = [2] }}
[measure]
warmup_s = 0.0
min_block_s = 0.001
min_samples = 3
max_samples = 1000
min_time_s = {seconds}
max_time_s = {seconds}
timeout_s = 60
[executor]
resources = {{ bench_host = 1 }}
"""
N_CASES = 8  # lenet b2, b4 + lstm b2 + autoencoder/pretrain1 b2, forward and gradient


def suite(tmp_path: Path, seconds: float = 0.05) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(SUITE.format(seconds=seconds))
    return path


def fleet_args(cluster: Any, suite_path: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--executor", "ray", "--address", cluster.address, "-s", str(suite_path), "-o", str(out),
            "-q", *extra]


def worker_ids(cluster: Any) -> set[str]:
    return {node.node_id for node in cluster.worker_nodes}


def rows_of(run_dir: Path) -> list[Any]:
    return list(load_run(run_dir).results)


def assert_each_case_once(rows: Any) -> None:
    keys = Counter(r.case.key for r in rows)
    assert len(keys) == N_CASES and set(keys.values()) == {1}, keys


def assert_one_group_per_node_at_a_time(run_dir: Path) -> None:
    """From the record alone: on each node the spans of its groups never overlap, and every row started
    inside a span of its own node."""
    record = load_run(run_dir)
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for entry in record.environment.nodes.values():
        for group in entry["groups"]:
            spans[entry["node_id"]].append((group["started"], group["finished"]))
    assert spans
    for node_id, intervals in spans.items():
        intervals.sort()
        for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False):
            assert start >= end, f"two groups overlapped on node {node_id}: {intervals}"
    for row in record.results:
        if row.status != "ok":
            continue
        started = datetime.fromisoformat(row.started_at).timestamp()
        assert any(a - 1 <= started <= b + 1 for a, b in spans[row.node_id]), (row.case.key, row.node_id)


def test_spread_runs_every_case_once_across_both_nodes(cluster: Any, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = run_cli(*fleet_args(cluster, suite(tmp_path, 0.3), out))
    assert proc.returncode == 0, proc.stderr
    rows = rows_of(out)
    assert_each_case_once(rows)
    assert all(r.status == "ok" and r.retries == 0 for r in rows)
    assert {r.node_id for r in rows} == worker_ids(cluster)  # both worker nodes took a share, the head none
    assert all(r.host for r in rows)
    record = load_run(out)
    assert record.config.executor.placement == "spread"
    nodes = record.environment.nodes
    assert {n["node_id"] for n in nodes.values()} == worker_ids(cluster)
    for entry in nodes.values():  # each node's environment captured there: its own cores, its own process
        assert entry["environment"]["host"]["hostname"] == entry["hostname"]
        assert len(entry["cores"]) == 1
    for row in rows:
        assert row.affinity == tuple(nodes[next(k for k, v in nodes.items() if v["node_id"] == row.node_id)]["cores"])
    assert_one_group_per_node_at_a_time(out)
    csv_header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert {"host", "node_id", "retries"} <= set(csv_header)


def test_each_node_runs_every_case_on_every_node(cluster: Any, tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    proc = run_cli(*fleet_args(cluster, suite(tmp_path), out, "--placement", "each-node"))
    assert proc.returncode == 0, proc.stderr
    node_dirs = sorted(p.parent for p in out.glob("*/run.json"))
    assert len(node_dirs) == 2
    seen = set()
    for node_dir in node_dirs:
        record = load_run(node_dir)
        assert record.status == "complete"
        assert_each_case_once(record.results)
        assert len(record.results) == N_CASES and all(r.status == "ok" for r in record.results)
        (node_id,) = {r.node_id for r in record.results}
        seen.add(node_id)
        assert record.environment.host.hostname  # the node's own environment is the run's environment
        assert_one_group_per_node_at_a_time(node_dir)
    assert seen == worker_ids(cluster)
    # a fleet run reads like several machines' runs: compare and report take the node directories
    compare = run_cli("compare", str(node_dirs[0]), str(node_dirs[1]))
    assert compare.returncode in (0, 1), compare.stderr
    report = run_cli("report", *map(str, node_dirs), "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    history = run_cli("history", str(out))
    assert history.returncode == 0, history.stderr


def test_unplaceable_cases_get_a_status_row(cluster: Any, tmp_path: Path) -> None:
    path = tmp_path / "gpu.toml"
    path.write_text(SUITE.format(seconds=0.05).replace("[devices.cpu]", "[devices.gpu]"))
    out = tmp_path / "run"
    proc = run_cli(*fleet_args(cluster, path, out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = rows_of(out)
    assert len(rows) == N_CASES
    assert {r.status for r in rows} == {"unavailable"}
    assert all("GPU" in r.error for r in rows)


def test_unreachable_address_exits_2(tmp_path: Path) -> None:
    proc = run_cli("run", "--executor", "ray", "--address", "127.0.0.1:9", "-s", str(suite(tmp_path)),
                   "-o", str(tmp_path / "run"), timeout=120)
    assert_one_line_error(proc, "cannot reach the Ray cluster")


def start_driver(args: list[str]) -> subprocess.Popen[str]:
    env = dict(os.environ, COLUMNS="200")
    env.pop("DLBENCH_FAKE_FAULTS", None)
    return subprocess.Popen([sys.executable, "-m", "dlbench", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_rows(out: Path, count: int, proc: subprocess.Popen[str], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:  # run.json and the journal that continues it, as every reader sees the record
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", JournalWarning)  # a line being written as we read
                rows = rows_of(out)
        except (OSError, StoreError):
            rows = []
        if len(rows) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} results after {timeout} s")


def test_driver_killed_then_resume_completes_every_case_once(cluster: Any, tmp_path: Path) -> None:
    out = tmp_path / "run"
    driver = start_driver(fleet_args(cluster, suite(tmp_path, 1.0), out))
    wait_for_rows(out, 2, driver)
    driver.send_signal(signal.SIGKILL)
    driver.communicate()
    before = rows_of(out)
    assert 2 <= len(before) < N_CASES
    proc = run_cli("run", "--resume", str(out), "-q", timeout=400)
    assert proc.returncode == 0, proc.stderr
    rows = rows_of(out)
    assert_each_case_once(rows)
    assert len(rows) == N_CASES and all(r.status == "ok" for r in rows)
    assert {r.case.key: r.started_at for r in before} == {r.case.key: r.started_at for r in rows if r.case.key in
                                                          {b.case.key for b in before}}  # nothing measured twice
    assert load_run(out).status == "complete"
    assert_one_group_per_node_at_a_time(out)


def test_a_node_dying_mid_case_is_retried_elsewhere(cluster: Any, tmp_path: Path) -> None:
    out = tmp_path / "run"
    driver = start_driver(fleet_args(cluster, suite(tmp_path, 1.0), out))
    try:
        wait_for_rows(out, 2, driver)
        victim = min(cluster.worker_nodes, key=lambda node: node.node_id)
        kill_node(cluster, victim)
        stdout, stderr = driver.communicate(timeout=400)
    finally:
        if driver.poll() is None:
            driver.kill()
        add_worker(cluster)  # the next tests find two worker nodes again
        cluster.wait_for_nodes()
    assert driver.returncode == 0, stderr
    rows = rows_of(out)
    assert_each_case_once(rows)
    assert all(r.status == "ok" for r in rows), [(r.case.key, r.status, r.error) for r in rows]
    retried = [r for r in rows if r.retries]
    assert retried, "the case running on the killed node was not retried"
    assert all(r.node_id != victim.node_id for r in retried)
    assert "lost" in stderr
