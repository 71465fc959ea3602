"""The driver's work queue: which node takes which case group next, and what happens when a node dies.

Ray places the node agents; this queue only decides which pending group a free node takes. A node runs one
group at a time, so the queue hands a node one item and waits for it to come back done or lost. Lost items
go back to the queue (bounded retries per case); items that no live node can run become status rows, so a
run never waits for a node that will not come.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from dlbench.fleet.nodes import NodeSpec, can_run, unplaceable_reason
from dlbench.record.results import CRASHED, INTERRUPTED, UNAVAILABLE, CaseResult, failed_result
from dlbench.runner.protocol import WorkerJob


@dataclass
class Item:
    """A case group waiting for a node. ``node_id`` set: only that node may run it (placement each-node)."""

    job: WorkerJob
    node_id: str | None = None
    retries: dict[str, int] = field(default_factory=dict)  # case key -> times re-placed after its node died


@dataclass
class Live:
    node: NodeSpec
    cores: tuple[int, ...]


class WorkQueue:
    """Thread-safe: one driver thread per node calls :meth:`take` and reports back with :meth:`done` or
    :meth:`lost`; :meth:`leave` removes a node that will take no more work."""

    def __init__(self, items: Sequence[Item], max_retries: int, required: dict[str, float]) -> None:
        self.pending = list(items)
        self.max_retries = max_retries
        self.required = required
        self.live: dict[str, Live] = {}
        self.in_flight = 0
        self.closed = False
        self.cond = threading.Condition()

    def join(self, node: NodeSpec, cores: tuple[int, ...]) -> None:
        with self.cond:
            self.live[node.node_id] = Live(node, cores)
            self.cond.notify_all()

    def _runnable(self, item: Item, live: Live) -> bool:
        if item.node_id is not None and item.node_id != live.node.node_id:
            return False
        return can_run(live.node, item.job.device, item.job.threads, live.cores)

    def take(self, node_id: str) -> Item | None:
        """The next item this node can run; waits while another node's lost item might still come back;
        None when nothing is left for it."""
        with self.cond:
            while not self.closed:
                live = self.live.get(node_id)
                if live is None:
                    return None
                for index, item in enumerate(self.pending):
                    if self._runnable(item, live):
                        self.in_flight += 1
                        return self.pending.pop(index)
                if self.in_flight == 0:
                    return None
                self.cond.wait(timeout=1.0)
            return None

    def done(self) -> None:
        with self.cond:
            self.in_flight -= 1
            self.cond.notify_all()

    def lost(self, item: Item, remaining: Sequence[str], node: NodeSpec, why: str) -> list[CaseResult]:
        """The node died while running ``item``; ``remaining`` are the keys without a result yet, the first
        of which was running. It is re-queued with one more retry, or, out of retries, becomes a crashed
        row; the cases that had not started go back without counting a retry."""
        rows: list[CaseResult] = []
        with self.cond:
            self.in_flight -= 1
            waiting = set(remaining)
            left = [c for c in item.job.cases if c.key in waiting]
            retries = dict(item.retries)
            if left:
                first = left[0]
                retries[first.key] = retries.get(first.key, 0) + 1
                if retries[first.key] > self.max_retries:
                    rows.append(failed_result(
                        first, CRASHED, f"node {node.label} died while running it ({why}); "
                                        f"gave up after {self.max_retries} retries on other nodes"))
                    left = left[1:]
            if left:
                self.pending.append(replace(item, job=replace(item.job, cases=tuple(left)), retries=retries))
            self.cond.notify_all()
        return rows

    def leave(self, node_id: str) -> None:
        with self.cond:
            self.live.pop(node_id, None)
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def unplaceable(self) -> list[tuple[Item, str, str]]:
        """Remove and return the pending items no live node can run, with a status and the reason (called by
        the driver once the nodes have joined, whenever one leaves, and at the end).

        An item bound to a node that has left (each-node) is ``interrupted``: ``--resume`` runs it when the
        node is back. Anything else is ``unavailable``: the cluster has no node that could run it."""
        with self.cond:
            nodes = [live.node for live in self.live.values()]
            cores = {live.node.node_id: live.cores for live in self.live.values()}
            dropped: list[tuple[Item, str, str]] = []
            kept = []
            for item in self.pending:
                if item.node_id is not None and item.node_id not in self.live:
                    dropped.append((item, INTERRUPTED, "its node left the cluster before running it; "
                                                       "--resume runs it when the node is back"))
                    continue
                candidates = [n for n in nodes if item.node_id in (None, n.node_id)]
                reason = unplaceable_reason(item.job.device, item.job.threads, candidates, cores, self.required)
                if reason is None:
                    kept.append(item)
                else:
                    dropped.append((item, UNAVAILABLE, f"could not be placed: {reason}"))
            self.pending = kept
            self.cond.notify_all()
            return dropped
