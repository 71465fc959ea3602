"""The canonical workloads of ``docs/workloads.md``: one definition, every adapter builds it.

``definitions`` holds shapes, parameters and MACs (computed from the layer tables, not typed in),
``data`` the seeded synthetic inputs and ``weights`` the seeded canonical initial weights.
"""

from dlbench.workloads.data import Batch, make_batch
from dlbench.workloads.definitions import (
    AUTOENCODER_SIZES,
    DROPOUT_RATE,
    LAYER_WORKLOADS,
    PASSES,
    WORKLOADS,
    ConvLayer,
    ParamSpec,
    Workload,
    all_workload_names,
    check_pass,
    get_workload,
    pretrain_level,
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
    "Workload",
    "all_workload_names",
    "check_pass",
    "get_workload",
    "initial_weights",
    "make_batch",
    "pretrain_level",
    "select_phases",
    "workload_names",
]
