"""A fleet run on disk: which store each node's results go to, and how an interrupted fleet run resumes.

``spread`` writes one ordinary run directory; every row names the host and Ray node that ran it, and
``environment.nodes`` holds each node's environment, captured on that node, and the span of every group it
ran. ``each-node`` writes one ordinary run directory per node (``OUTPUT/<node>/``) whose environment is that
node's: ``report OUTPUT/*``, ``compare OUTPUT/a OUTPUT/b`` and ``history OUTPUT`` then read a fleet run like
several machines' runs side by side. Every result is stored the moment it reaches the driver, with the same
store as a local run (one synced journal line per result, :mod:`dlbench.record.journal`), so a driver killed
mid-sweep loses nothing, ``--resume`` finishes the rest, and the driver's cost per case does not grow with
the sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from dlbench.cases.spec import Case, WorkerKey
from dlbench.errors import DlbenchError, validation_message
from dlbench.fleet.agent import STARTED
from dlbench.fleet.driver import DEFAULT_MAX_RETRIES, FleetDriver, Started
from dlbench.fleet.nodes import PLACEMENTS, SPREAD, NodeSpec
from dlbench.fleet.queue import Item
from dlbench.measure.timing import MeasureConfig
from dlbench.record.results import INTERRUPTED, CaseResult
from dlbench.record.schema import Environment, ExecutorConfig, RunConfig
from dlbench.record.store import RUN_FILE, RunRecord, RunStore, load_run
from dlbench.runner.protocol import WorkerJob
from dlbench.runner.schedule import group_cases
from dlbench.runner.session import Progress

COMPLETE = "complete"
SPREAD_CHUNKS = 2  # spread: work items per node; each costs a worker start, fewer balance worse


@dataclass(frozen=True)
class FleetOptions:
    """How a fleet run is placed; stored in the run's config so that ``--resume`` places it the same way."""

    address: str = "auto"
    placement: str = SPREAD
    resources: dict[str, float] = field(default_factory=dict)
    max_retries: int = DEFAULT_MAX_RETRIES

    def to_config(self) -> ExecutorConfig:
        return ExecutorConfig(name="ray", address=self.address, placement=self.placement,
                              resources=dict(self.resources), max_retries=self.max_retries)

    @classmethod
    def from_config(cls, data: ExecutorConfig, address: str | None) -> FleetOptions:
        placement = data.placement or SPREAD
        if placement not in PLACEMENTS:
            raise DlbenchError(f"the stored run names an unknown placement {placement!r}")
        return cls(address=address or data.address or "auto", placement=placement,
                   resources=dict(data.resources), max_retries=data.max_retries)


def is_fleet_config(config: RunConfig) -> bool:
    return config.executor.name == "ray"


def each_node_dirs(directory: Path) -> list[Path]:
    """The node runs of an each-node fleet run directory (which itself holds no run.json)."""
    if (directory / RUN_FILE).exists() or not directory.is_dir():
        return []
    return sorted(p.parent for p in directory.glob(f"*/{RUN_FILE}"))


def pending_items(cases: Sequence[Case], done: set[str], measure: MeasureConfig, seed: int,
                  node_id: str | None = None, chunks: int = 1) -> list[Item]:
    """Work items for the cases not yet done: each worker group split into up to ``chunks`` runs of
    consecutive cases (spread: more items than nodes, so that nodes finish together); the node fills in
    the cores."""
    items = []
    for key, members in group_cases(c for c in cases if c.key not in done):
        for part in split(members, chunks):
            job = WorkerJob(key=key, cores=(), cases=part, measure=measure, seed=seed)
            items.append(Item(job=job, node_id=node_id))
    return items


def split(cases: tuple[Case, ...], chunks: int) -> list[tuple[Case, ...]]:
    """``cases`` in at most ``chunks`` consecutive runs of nearly equal length."""
    count = max(1, min(chunks, len(cases)))
    size, extra = divmod(len(cases), count)
    parts, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        parts.append(cases[start:end])
        start = end
    return [p for p in parts if p]


def record_node(store: RunStore, node: NodeSpec, description: dict[str, Any]) -> None:
    """Keep the node's own environment (captured there) in ``environment.nodes[label]``."""
    store.update_node(node.label, fields={
        "node_id": node.node_id, "hostname": description.get("hostname", node.hostname),
        "cores": description.get("cores", []), "resources": dict(node.resources),
        "environment": description.get("environment", {})})


@dataclass
class StoreSink:
    """Writes what the fleet produces into the store of the node that produced it (one store for spread)."""

    stores: dict[str | None, RunStore]  # node id -> store; key None: the one store of a spread run
    progress: Progress
    labels: dict[str, NodeSpec] = field(default_factory=dict)

    def store_for(self, node_id: str | None) -> RunStore:
        if None in self.stores:
            return self.stores[None]
        if node_id is None or node_id not in self.stores:
            raise RuntimeError(f"no store for node {node_id!r}")  # a bug: each-node items name their node
        return self.stores[node_id]

    def node_joined(self, node: NodeSpec, description: dict[str, Any]) -> None:
        self.labels[node.node_id] = node
        if node.node_id in self.stores or None in self.stores:
            record_node(self.store_for(node.node_id), node, description)

    def runtime(self, node: NodeSpec, worker: WorkerKey, info: dict[str, Any]) -> None:
        store = self.store_for(node.node_id)
        store.update_node(node.label, workers={worker.label: info})
        store.set_framework_info(worker, info)

    def result(self, node_id: str | None, result: CaseResult) -> None:
        self.store_for(node_id).add(result)
        self.progress.result(result)

    def span(self, node: NodeSpec, event: dict[str, Any]) -> None:
        """Keep when each group held its node: opened when it starts, extended by each result (so a group
        cut short by a driver's death still shows how long it ran), closed when it ends. Each is one small
        journal line, whatever the run has stored so far: the driver's cost per case stays constant."""
        store = self.store_for(node.node_id)
        if event["event"] == STARTED:
            store.update_node(node.label, group={"worker": event["worker"], "started": event["at"],
                                                 "finished": event["at"], "cores": event.get("cores", []),
                                                 "cases": event.get("cases", 0)})
        else:
            store.update_node(node.label, finished=event["at"])

    def note(self, text: str) -> None:
        self.progress.note(text)


def run_fleet(stores: dict[str | None, RunStore], template: RunRecord, options: FleetOptions,
              cases: Sequence[Case], memory_limit: float | None, progress: Progress, *,
              new_node_store: Callable[[NodeSpec, dict[str, Any]], RunStore] | None = None) -> str:
    """Start the agents and run what is pending; returns complete or interrupted.

    ``stores`` has the key None for a spread run; for each-node it holds the earlier node runs (resume) and
    ``new_node_store`` makes a store for each node of a fresh run. ``template`` carries the plan."""
    measure, seed = template.config.measure, template.config.seed
    driver = FleetDriver(address=options.address, required=options.resources, memory_limit_mb=memory_limit,
                         need_gpu=any(c.device == "gpu" for c in cases), max_retries=options.max_retries)
    sink = StoreSink(stores, progress)
    try:
        agents = driver.start(sink)
        items = _items(stores, agents, options, cases, measure, seed, new_node_store, sink)
        progress.total(sum(len(i.job.cases) for i in items))
        driver.run(items, sink)
    except KeyboardInterrupt:
        for store in stores.values():
            store.finish(INTERRUPTED)
        return INTERRUPTED
    finally:
        _disconnect()
    status = COMPLETE
    for store in stores.values():
        done = store.done_keys()  # once per store: asked per case, it made the end of a sweep quadratic
        missing = [c for c in cases if c.key not in done]
        store_status = INTERRUPTED if missing else COMPLETE
        if missing:
            status = INTERRUPTED
        store.finish(store_status)
    return status


def _items(stores: dict[str | None, RunStore], agents: Sequence[Started], options: FleetOptions,
           cases: Sequence[Case], measure: MeasureConfig, seed: int,
           new_node_store: Callable[[NodeSpec, dict[str, Any]], RunStore] | None, sink: StoreSink) -> list[Item]:
    if options.placement == SPREAD:
        store = stores[None]
        return pending_items(cases, store.done_keys(), measure, seed, chunks=SPREAD_CHUNKS * max(1, len(agents)))
    by_label = {store.record.config.executor.node: node_id for node_id, store in stores.items()}
    items: list[Item] = []
    for agent in agents:
        node = agent.node
        earlier = by_label.get(node.label)
        if earlier is not None:  # resume: this node's run exists; key its store by the node's id now
            stores[node.node_id] = stores.pop(earlier)
        elif new_node_store is not None:
            stores[node.node_id] = new_node_store(node, agent.description)
        else:
            sink.note(f"node {node.label} joined after the run began; it is not part of this run")
            continue
        sink.node_joined(node, agent.description)
        items.extend(pending_items(cases, stores[node.node_id].done_keys(), measure, seed, node.node_id))
    absent = [s for key, s in stores.items() if key not in {a.node.node_id for a in agents}]
    for store in absent:
        label = store.record.config.executor.node or "?"
        sink.note(f"node {label} is not in the cluster now; its missing cases stay missing (--resume later)")
    if not stores:
        raise DlbenchError("no node of the cluster can run this fleet run (see the notes above)")
    return items


def _disconnect() -> None:
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()


def node_record(template: RunRecord, node: NodeSpec, description: dict[str, Any]) -> RunRecord:
    """The run record of one node of an each-node run: the plan is the fleet's, the environment the node's."""
    try:
        captured = msgspec.convert(description.get("environment") or {}, Environment)
    except msgspec.ValidationError as exc:
        raise DlbenchError(f"node {node.label} reported an invalid environment: {validation_message(exc)}") from None
    environment = msgspec.structs.replace(captured, driver=msgspec.to_builtins(template.environment, str_keys=True))
    config = msgspec.structs.replace(template.config,
                                     executor=msgspec.structs.replace(template.config.executor, node=node.label))
    return RunRecord(run_id=f"{template.run_id}-{node.label}", created=template.created, environment=environment,
                     config=config)


def each_node_factory(directory: Path, template: RunRecord) -> Callable[[NodeSpec, dict[str, Any]], RunStore]:
    def make(node: NodeSpec, description: dict[str, Any]) -> RunStore:
        return RunStore.open(directory / node.label, node_record(template, node, description))

    return make


def reopen_each_node(directory: Path) -> tuple[dict[str | None, RunStore], RunRecord]:
    """The node stores of an each-node run, keyed by their node's label for now (ids are known once the
    agents start); the first node's record stands for the plan."""
    stores: dict[str | None, RunStore] = {}
    for sub in each_node_dirs(directory):
        record = load_run(sub)
        if not is_fleet_config(record.config):
            continue
        store = RunStore.open(sub, resume=True)
        stores[record.config.executor.node or sub.name] = store
    if not stores:
        raise DlbenchError(f"nothing to resume: {directory / RUN_FILE} does not exist")
    template = next(iter(stores.values())).record
    return stores, template
