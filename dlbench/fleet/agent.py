"""The per-node agent: a Ray actor that runs its node's case groups one at a time, through the same worker
process machinery as a local run, and streams each event back the moment it exists.

One agent per node, pinned there by node affinity, and actor calls run one at a time: that is the node-level
exclusivity, so no two measured groups ever share a node. The agent reserves the node's CPUs in Ray, so Ray
schedules nothing else there while the run lasts. Ray does not pin CPU affinity: the worker pins itself to
the cores the agent gives it (``node_cores``: one core stays with Ray's daemons).
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from dlbench.cases.spec import WorkerKey
from dlbench.fleet.nodes import node_cores
from dlbench.machine import capture as environment
from dlbench.process.placement import cores_for
from dlbench.record.results import CaseResult
from dlbench.runner.executor import LocalExecutor
from dlbench.runner.protocol import WorkerJob

STARTED = "started"  # the group begins: {"worker": label, "at": epoch s, "cores": [...], "cases": n}
RUNTIME = "runtime"  # {"worker": WorkerKey.to_dict(), "info": {...}}
RESULT = "result"  # {"result": CaseResult.to_dict(), "at": epoch s}
GROUP = "group"  # the group ended: {"worker": label, "at": epoch s}
ERROR = "error"  # the agent itself failed: {"error": "..."}


class NodeAgent:
    """Lives on one node for the whole run (wrapped by ``ray.remote`` in the driver)."""

    def __init__(self, ray_cpus: float, memory_limit_mb: float | None = None) -> None:
        self.cores = node_cores(os.sched_getaffinity(0), ray_cpus)
        self.executor = LocalExecutor(memory_limit_mb=memory_limit_mb)

    def describe(self) -> dict[str, Any]:
        """Who and where this node is, and its environment, captured here rather than on the driver."""
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(),
                "cores": list(self.cores), "pid": os.getpid(), "environment": environment.capture()}

    def run_group(self, job_wire: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Run one case group on this node's cores; yields its start, runtime and result events (each stamped
        with this node's clock), then its end: the record keeps the span each group held the node."""
        job = WorkerJob.from_wire(job_wire)
        job = replace(job, cores=cores_for(job.threads, self.cores))
        events: queue.Queue[dict[str, Any] | None] = queue.Queue()

        def on_result(result: CaseResult) -> None:
            events.put({"event": RESULT, "result": result.to_dict(), "at": time.time()})

        def on_runtime(worker: WorkerKey, info: dict[str, Any]) -> None:
            events.put({"event": RUNTIME, "worker": worker.to_dict(), "info": info})

        yield {"event": STARTED, "worker": job.key.label, "at": time.time(), "cores": list(job.cores),
               "cases": len(job.cases)}

        def work() -> None:
            try:
                self.executor.run(job, on_result, on_runtime)
            except Exception as exc:  # reported as an event: the driver turns it into status rows
                events.put({"event": ERROR, "error": f"{type(exc).__name__}: {exc}"})
            finally:
                events.put(None)

        # the executor blocks on the worker's pipe; a thread lets this generator hand each event over at once
        thread = threading.Thread(target=work, name="dlbench-group", daemon=True)
        thread.start()
        while (event := events.get()) is not None:
            yield event
        thread.join()
        yield {"event": GROUP, "worker": job.key.label, "at": time.time()}
