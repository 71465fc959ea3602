"""Which nodes of the cluster may run which case groups, and which cores a node's worker owns.

Works on the plain dictionaries of ``ray.nodes()`` so that it is testable without a cluster.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dlbench.process.placement import cores_for

SPREAD = "spread"
EACH_NODE = "each-node"
PLACEMENTS = (SPREAD, EACH_NODE)


@dataclass(frozen=True)
class NodeSpec:
    """A live node that matches the run's resource labels, as the driver sees it before using it."""

    node_id: str
    hostname: str
    cpus: float
    gpus: float
    resources: Mapping[str, float] = field(default_factory=dict)
    label: str = ""  # unique within the run: hostname, or hostname-<node id prefix> when hostnames repeat


def describe_resources(resources: Mapping[str, float]) -> str:
    return ", ".join(f"{name}={value:g}" for name, value in sorted(resources.items())) or "none"


def matching_nodes(ray_nodes: Iterable[Mapping[str, Any]], required: Mapping[str, float]) -> list[NodeSpec]:
    """Alive nodes with at least one CPU and every required resource, in a stable order, uniquely labelled.

    A node without a CPU (a head started with ``--num-cpus 0``) never runs cases: it only hosts the daemons.
    """
    found = []
    for node in ray_nodes:
        resources = {str(k): float(v) for k, v in dict(node.get("Resources") or {}).items()}
        if not node.get("Alive") or resources.get("CPU", 0.0) < 1:
            continue
        if any(resources.get(name, 0.0) < amount for name, amount in required.items()):
            continue
        found.append(NodeSpec(node_id=str(node["NodeID"]), hostname=str(node.get("NodeManagerHostname") or "?"),
                              cpus=resources.get("CPU", 0.0), gpus=resources.get("GPU", 0.0),
                              resources=resources))
    found.sort(key=lambda n: (n.hostname, n.node_id))
    return label_nodes(found)


def label_nodes(nodes: Sequence[NodeSpec]) -> list[NodeSpec]:
    """Name nodes by hostname; where several share one (several nodes on one machine), add the node id."""
    counts = Counter(n.hostname for n in nodes)
    labelled = []
    for node in nodes:
        label = node.hostname if counts[node.hostname] == 1 else f"{node.hostname}-{node.node_id[:8]}"
        labelled.append(NodeSpec(node.node_id, node.hostname, node.cpus, node.gpus, node.resources,
                                 safe_label(label)))
    return labelled


def safe_label(text: str) -> str:
    """A label usable as a directory name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "node"


def node_cores(affinity: Iterable[int], ray_cpus: float) -> tuple[int, ...]:
    """The cores a node's measured groups may use.

    One core (the lowest) is left to Ray's own daemons (raylet, object store, the agent process) when the node
    has more than one; of the rest, at most as many as the node offers to Ray (``--num-cpus``), the highest
    first, so that a node started with fewer CPUs than its machine has keeps its groups off the other cores.
    """
    cores = sorted(set(affinity))
    free = cores_for(max(1, len(cores) - 1), cores, reserve=1)
    return free[-max(1, int(ray_cpus)):]


def unplaceable_reason(device: str, threads: int, nodes: Sequence[NodeSpec],
                       cores: Mapping[str, Sequence[int]], required: Mapping[str, float]) -> str | None:
    """Why no node of ``nodes`` can run a group (None when one can); ``cores`` maps node id to its cores."""
    if not nodes:
        return f"no live node of the cluster has the resources the run needs ({describe_resources(required)})"
    if device == "gpu" and not any(n.gpus >= 1 for n in nodes):
        return "no live node of the cluster that matches the run has a GPU"
    fitting = [n for n in nodes if len(cores.get(n.node_id, ())) >= threads and (device != "gpu" or n.gpus >= 1)]
    if not fitting:
        most = max((len(cores.get(n.node_id, ())) for n in nodes), default=0)
        return f"{threads} threads requested but no live node offers more than {most} free cores"
    return None


def can_run(node: NodeSpec, device: str, threads: int, cores: Sequence[int]) -> bool:
    return len(cores) >= threads and (device != "gpu" or node.gpus >= 1)
