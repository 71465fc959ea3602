"""The workloads of ``docs/workloads.md`` and of every installed plugin: one definition, every adapter builds it.

``definitions`` holds the shapes, parameters and MACs of the built-in networks (computed from the layer
tables, not typed in), ``plugin`` what a workload plugin provides, ``registry`` every registered workload
(built-ins and plugins through the same ``dlbench.workloads`` entry points), ``data`` the seeded synthetic
inputs and ``weights`` the seeded canonical initial weights.
"""

from dlbench.workloads.data import Batch
from dlbench.workloads.definitions import (
    AUTOENCODER_SIZES,
    DROPOUT_RATE,
    LAYER_WORKLOADS,
    PASSES,
    WORKLOADS,
    ConvLayer,
    ParamSpec,
    Phase,
    Workload,
    check_pass,
    pretrain_level,
)
from dlbench.workloads.plugin import WorkloadPlugin, WorkloadPluginError
from dlbench.workloads.registry import (
    all_workload_names,
    broken_workloads,
    entry_workload,
    forward_flops,
    get_plugin,
    get_workload,
    is_sequence_workload,
    layer_workloads,
    load_builder,
    make_batch,
    networks,
    pass_flops,
    select_phases,
    workload_names,
)
from dlbench.workloads.weights import initial_weights

__all__ = [
    "AUTOENCODER_SIZES",
    "DROPOUT_RATE",
    "LAYER_WORKLOADS",
    "PASSES",
    "WORKLOADS",
    "Batch",
    "ConvLayer",
    "ParamSpec",
    "Phase",
    "Workload",
    "WorkloadPlugin",
    "WorkloadPluginError",
    "all_workload_names",
    "broken_workloads",
    "check_pass",
    "entry_workload",
    "forward_flops",
    "get_plugin",
    "get_workload",
    "initial_weights",
    "is_sequence_workload",
    "layer_workloads",
    "load_builder",
    "make_batch",
    "networks",
    "pass_flops",
    "pretrain_level",
    "select_phases",
    "workload_names",
]
