"""The driver side of a fleet run: connect to the Ray cluster, start one agent per matching node, hand out
case groups, stream results back, retry what a dying node was running.

Everything that touches the run's store happens on the calling thread (through a :class:`FleetSink`); the
per-node threads only talk to Ray and to the work queue.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from dlbench.cases.spec import WorkerKey
from dlbench.errors import DlbenchError
from dlbench.fleet.agent import ERROR, GROUP, RESULT, RUNTIME, STARTED, NodeAgent
from dlbench.fleet.nodes import NodeSpec, describe_resources, matching_nodes
from dlbench.fleet.queue import Item, WorkQueue
from dlbench.record.results import FAILED, CaseResult, failed_result

CONNECT_TIMEOUT_S = 5.0
AGENT_START_S = 120.0  # an agent that cannot start (its node's CPUs taken by other Ray work) is left out
DEFAULT_MAX_RETRIES = 2
ENV_PREFIX = "DLBENCH_"  # the driver's DLBENCH_* variables reach the workers, as they do in a local run


class FleetSink(Protocol):
    """Receives what the fleet produces, on the driver's main thread."""

    def node_joined(self, node: NodeSpec, description: dict[str, Any]) -> None: ...

    def runtime(self, node: NodeSpec, worker: WorkerKey, info: dict[str, Any]) -> None: ...

    def result(self, node_id: str | None, result: CaseResult) -> None: ...

    def span(self, node: NodeSpec, event: dict[str, Any]) -> None: ...

    def note(self, text: str) -> None: ...


def check_reachable(address: str) -> None:
    """A ``HOST:PORT`` that accepts no TCP connection is an error at once (Ray itself would retry for
    minutes before giving up)."""
    if address == "auto":
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise DlbenchError(f"--address {address!r}: expected auto or HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise DlbenchError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def connect(address: str) -> None:
    """Join the cluster as its driver (once per process: the CLI connects before it writes anything)."""
    check_reachable(address)
    try:
        import ray
    except ImportError:
        raise DlbenchError("--executor ray needs Ray: pip install 'dlbench[ray]'") from None
    if ray.is_initialized():
        return
    env_vars = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    try:
        ray.init(address=address, runtime_env={"env_vars": env_vars}, logging_level=logging.ERROR,
                 log_to_driver=False, configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DlbenchError(f"cannot connect to the Ray cluster at {address}: {first}") from None


@dataclass
class Started:
    node: NodeSpec
    actor: Any
    cores: tuple[int, ...]
    description: dict[str, Any]


@dataclass
class FleetDriver:
    """One fleet run on a cluster: ``start`` the agents, then ``run`` the items."""

    address: str
    required: dict[str, float] = field(default_factory=dict)
    memory_limit_mb: float | None = None
    need_gpu: bool = False
    max_retries: int = DEFAULT_MAX_RETRIES
    agents: list[Started] = field(default_factory=list)

    def start(self, sink: FleetSink) -> list[Started]:
        """Connect, find the matching nodes and start an agent on each (in parallel)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        connect(self.address)
        nodes = matching_nodes(ray.nodes(), self.required)
        remote: Any = ray.remote(NodeAgent)
        pending = []
        for node in nodes:
            actor = remote.options(
                num_cpus=node.cpus, num_gpus=1 if self.need_gpu and node.gpus >= 1 else 0, max_restarts=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
            ).remote(node.cpus, self.memory_limit_mb)
            pending.append((node, actor, actor.describe.remote()))
        ready, _ = ray.wait([ref for _, _, ref in pending], num_returns=len(pending), timeout=AGENT_START_S)
        for node, actor, ref in pending:
            try:
                if ref not in ready:
                    raise TimeoutError(f"did not start within {AGENT_START_S:g} s (are its CPUs busy?)")
                description = ray.get(ref)
            except Exception as exc:  # a node that cannot host an agent is left out, with a note
                sink.note(f"node {node.label} left out: {type(exc).__name__}: {exc}")
                ray.kill(actor)
                continue
            started = Started(node, actor, tuple(description["cores"]), description)
            self.agents.append(started)
            sink.node_joined(node, description)
        if not nodes:
            sink.note(f"no live node with at least one CPU has the resources {describe_resources(self.required)}")
        return self.agents

    def run(self, items: Sequence[Item], sink: FleetSink) -> None:
        """Run every item on the started agents; returns when each case has a row or was left to resume."""
        work = WorkQueue(items, self.max_retries, self.required)
        for agent in self.agents:
            work.join(agent.node, agent.cores)
        events: queue.Queue[tuple[str, NodeSpec | None, Any]] = queue.Queue()
        self._drop_unplaceable(work, sink)  # before any node thread runs, and so leaves, the live set is whole
        threads = [threading.Thread(target=self._serve, args=(agent, work, events.put), daemon=True,
                                    name=f"dlbench-node-{agent.node.label}") for agent in self.agents]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                kind, node, payload = events.get()
                if kind == "end":
                    running -= 1
                    self._drop_unplaceable(work, sink)
                elif kind == "result":
                    sink.result(node.node_id if node else None, payload)
                elif kind == "runtime":
                    sink.runtime(node, *payload)  # type: ignore[arg-type]
                elif kind == "span":
                    sink.span(node, payload)  # type: ignore[arg-type]
                elif kind == "note":
                    sink.note(payload)
            self._drop_unplaceable(work, sink)
        finally:
            work.close()

    @staticmethod
    def _drop_unplaceable(work: WorkQueue, sink: FleetSink) -> None:
        for item, status, reason in work.unplaceable():
            for case in item.job.cases:
                sink.result(item.node_id, failed_result(case, status, reason, node_id=item.node_id or ""))

    def _serve(self, agent: Started, work: WorkQueue,
               emit: Callable[[tuple[str, NodeSpec | None, Any]], None]) -> None:
        """One node's thread: take an item, run it on the node's agent, pass its events on."""
        import ray

        node = agent.node
        try:
            while (item := work.take(node.node_id)) is not None:
                # the keys still without a result, in order; a dict, so that each result removes its key in
                # constant time (a list's remove made an item of k cases cost k^2)
                remaining = dict.fromkeys(c.key for c in item.job.cases)
                try:
                    for ref in agent.actor.run_group.remote(item.job.to_wire()):
                        event = ray.get(ref)
                        if event["event"] == RESULT:
                            result = CaseResult.from_dict(event["result"])
                            result = msgspec.structs.replace(result, host=node.hostname, node_id=node.node_id,
                                                             retries=item.retries.get(result.case.key, 0))
                            remaining.pop(result.case.key, None)
                            emit(("span", node, event))  # the group's span reaches the result before it is stored
                            emit(("result", node, result))
                        elif event["event"] == RUNTIME:
                            emit(("runtime", node, (WorkerKey(**event["worker"]), event["info"])))
                        elif event["event"] in (STARTED, GROUP):
                            emit(("span", node, event))
                        elif event["event"] == ERROR:
                            for case in item.job.cases:
                                if case.key in remaining:
                                    emit(("result", node, failed_result(case, FAILED, event["error"],
                                                                        host=node.hostname, node_id=node.node_id)))
                            remaining = {}
                except ray.exceptions.RayError as exc:  # the node (or its agent) died: re-queue, leave
                    why = type(exc).__name__
                    emit(("note", None, f"node {node.label} lost ({why}); {len(remaining)} case(s) go back "
                                        "to the queue"))
                    work.leave(node.node_id)
                    for row in work.lost(item, list(remaining), node, why):
                        emit(("result", node, msgspec.structs.replace(row, host=node.hostname, node_id=node.node_id,
                                                                      retries=self.max_retries)))
                    return
                work.done()
        finally:
            work.leave(node.node_id)
            emit(("end", node, None))
