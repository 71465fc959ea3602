"""Placement decisions of fleet runs, without a cluster: node matching, cores, the work queue's retries."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from dlbench.cases.spec import Case, WorkerKey
from dlbench.fleet.nodes import matching_nodes, node_cores
from dlbench.fleet.queue import Item, WorkQueue
from dlbench.fleet.sweep import split
from dlbench.plan.suite import parse_suite
from dlbench.runner.protocol import WorkerJob
from tests.conftest import assert_one_line_error, run_cli


def ray_node(node_id: str, host: str, alive: bool = True, **resources: float) -> dict[str, object]:
    return {"NodeID": node_id, "NodeManagerHostname": host, "Alive": alive, "Resources": resources}


def cases(n: int, device: str = "cpu") -> tuple[Case, ...]:
    return tuple(Case("lenet", "", "forward", "fake", "default", device, 1, b) for b in range(1, n + 1))


def item(n: int, device: str = "cpu", node_id: str | None = None) -> Item:
    members = cases(n, device)
    return Item(WorkerJob(key=WorkerKey.of(members[0]), cores=(), cases=members), node_id=node_id)


def test_nodes_match_on_cpu_and_every_required_resource_and_get_unique_labels() -> None:
    nodes = [ray_node("b" * 20, "vm", CPU=1, bench_host=1), ray_node("a" * 20, "vm", CPU=2, bench_host=1),
             ray_node("c" * 20, "head", CPU=0, bench_host=1), ray_node("d" * 20, "x", CPU=4),
             ray_node("e" * 20, "gone", alive=False, CPU=4, bench_host=1)]
    found = matching_nodes(nodes, {"bench_host": 1})
    assert [n.node_id[0] for n in found] == ["a", "b"]
    assert [n.label for n in found] == ["vm-aaaaaaaa", "vm-bbbbbbbb"]  # one machine, two nodes: ids tell apart
    assert [n.label for n in matching_nodes(nodes, {})] == ["vm-aaaaaaaa", "vm-bbbbbbbb", "x"]


def test_node_cores_leave_the_lowest_core_to_the_daemons_and_respect_the_ray_cpu_count() -> None:
    assert node_cores([0, 1, 2, 3], 8) == (1, 2, 3)
    assert node_cores([0, 1, 2, 3], 2) == (2, 3)
    assert node_cores([0], 1) == (0,)  # a one-core node has nothing to spare


def test_split_keeps_order_and_sizes_even() -> None:
    members = cases(5)
    parts = split(members, 2)
    assert [len(p) for p in parts] == [3, 2] and sum(parts, ()) == members
    assert split(members, 10) == [(c,) for c in members]


def test_a_lost_case_is_retried_a_bounded_number_of_times_then_becomes_a_crashed_row() -> None:
    node = matching_nodes([ray_node("n1", "h", CPU=1)], {})[0]
    queue = WorkQueue([item(3)], max_retries=1, required={})
    queue.join(node, (0,))
    first = queue.take("n1")
    assert first is not None
    keys = [c.key for c in first.job.cases]
    assert queue.lost(first, keys[1:], node, "ActorDiedError") == []  # case 0 had finished
    again = queue.take("n1")
    assert again is not None and [c.key for c in again.job.cases] == keys[1:]
    assert again.retries == {keys[1]: 1}  # the running case counts a retry, the waiting one does not
    rows = queue.lost(again, keys[1:], node, "ActorDiedError")
    assert [(r.case.key, r.status) for r in rows] == [(keys[1], "crashed")]
    assert "gave up after 1 retries" in rows[0].error
    last = queue.take("n1")
    assert last is not None and [c.key for c in last.job.cases] == keys[2:]


def test_unplaceable_items_become_rows_and_no_node_waits_for_them() -> None:
    node = matching_nodes([ray_node("n1", "h", CPU=1)], {})[0]
    queue = WorkQueue([item(2, "gpu"), item(1, node_id="elsewhere")], max_retries=2, required={})
    queue.join(node, (0,))
    dropped = queue.unplaceable()
    assert [(status, "GPU" in reason) for _, status, reason in dropped] == [("unavailable", True),
                                                                            ("interrupted", False)]
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(queue.take("n1")))
    thread.start()
    thread.join(timeout=5)
    assert result == [None]


def test_suite_executor_resources_are_validated() -> None:
    base = {"devices": {"cpu": {"batch_sizes": [2]}}, "workloads": ["lenet"]}
    suite = parse_suite({**base, "executor": {"resources": {"bench_host": 1, "gpu_type:H100": 1}}})
    assert dict(suite.resources) == {"bench_host": 1.0, "gpu_type:H100": 1.0}
    for bad in ({"resources": {"x": 0}}, {"resources": {"x": "1"}}, {"nodes": 1}, {"resources": [1]}):
        try:
            parse_suite({**base, "executor": bad})
        except Exception as exc:  # SuiteError with a one-line message naming the key
            assert "executor" in str(exc)
        else:
            raise AssertionError(f"accepted {bad}")


def test_a_local_run_imports_nothing_of_ray() -> None:
    code = ("import sys; import dlbench.cli.run_cmd, dlbench.runner.schedule, dlbench.fleet.sweep; "
            "sys.exit(1 if any(m == 'ray' or m.startswith('ray.') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_ray_options_without_the_ray_executor_are_refused_in_one_line(tmp_path: Path) -> None:
    proc = run_cli("run", "-s", "smoke", "-f", "fake", "--placement", "each-node", cwd=tmp_path)
    assert_one_line_error(proc, "need --executor ray")
    for address in ("no-port", "127.0.0.1:9"):  # malformed; nothing listens (checked before Ray is touched)
        proc = run_cli("run", "-s", "smoke", "-f", "fake", "--executor", "ray", "--address", address, cwd=tmp_path)
        assert_one_line_error(proc, "HOST:PORT" if address == "no-port" else "cannot reach the Ray cluster")
    assert not (tmp_path / "results").exists()  # a bad address leaves no run directory behind
