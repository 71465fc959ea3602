"""What a workload plugin is: :class:`WorkloadPlugin`, and the checks that make a broken one a one-line error.

A workload reaches dlbench through the ``dlbench.workloads`` entry-point group (``docs/plugins.md``); the
built-in five are registered there too (``pyproject.toml``), so there is one path for every workload. The
entry point names a :class:`WorkloadPlugin`: the framework-neutral definition (a
:class:`~dlbench.workloads.definitions.Workload`), optionally its own seeded batch generator, and per
framework the ``module:attribute`` of a builder written in that framework's own terms. Builders and the
NumPy reference are named by string, not imported: the parent process loads every plugin to list and plan
them and must never import a framework (``dlbench.frameworks.base``); a worker imports only its own.

Everything a plugin declares that dlbench can check cheaply is checked when it loads (:func:`check_plugin`):
the declared parameter count against the parameter table, the phases' parameter names, and one trial batch
of the generator against the declared input shape and dtype. A plugin that fails is reported by name with
the reason, in one line, and the other workloads go on (:mod:`dlbench.workloads.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from dlbench.errors import SuiteError
from dlbench.workloads.data import Batch
from dlbench.workloads.definitions import Workload

# A plugin's batch generator: (definition, batch size, a seeded generator) -> the canonical batch. dlbench
# derives the seed (from the workload's name, the batch size and the run's seed), so the same batch reaches
# every framework, and checks the result (:func:`check_batch`) every time.
BatchFn = Callable[[Workload, int, np.random.Generator], Batch]
TRIAL_BATCH = 2  # the batch size of the trial batch drawn when a plugin loads


class WorkloadPluginError(SuiteError):
    """A workload plugin that does not load, or declares something that is not so (one line, by name)."""


@dataclass(frozen=True)
class WorkloadPlugin:
    """One workload as a plugin provides it.

    * ``workload``: the definition: name, phases, per-sample input shape, the parameters in canonical layout
      (their names, shapes and initialisations: the canonical weight layout every builder loads), forward
      MACs per sample of each phase, the paper-style batch size.
    * ``builders``: adapter name (``torch``, ``tensorflow``, ``jax``, or a plugin adapter's) to the
      ``module:attribute`` of its builder, imported in that adapter's worker only. What a builder is depends
      on the adapter (``docs/plugins.md``); an adapter without an entry here reports the workload's cases as
      unavailable.
    * ``reference``: ``module:attribute`` of a float64 NumPy reference with the signature of
      :data:`dlbench.verify.reference.Network`; "" if there is none, and then ``verify`` compares the
      frameworks with each other only.
    * ``batch``: the seeded batch generator (None: dlbench's own, uniform [0, 1) float32 inputs of
      ``input_shape`` and uniform integer labels below ``num_classes``).
    * ``declared_params``: the plugin's own count of every parameter scalar (all phases), checked against the
      parameter table when it loads (None: not declared).
    * ``tolerance``: ``verify``'s float32 relative budgets (output, loss, gradient); None takes the defaults
      of :data:`DEFAULT_TOLERANCE`.
    * ``input_dtype``: the dtype of ``Batch.x`` (``float32`` images or features, ``int32`` token ids).
    * ``cross_check``: without a reference, ``verify`` compares the implementations with each other instead of
      refusing (a Keras model of its own: every backend runs the same model code; see
      :mod:`dlbench.workloads.keras_models`).
    """

    workload: Workload
    builders: Mapping[str, str] = field(default_factory=dict)
    reference: str = ""
    batch: BatchFn | None = None
    declared_params: int | None = None
    tolerance: tuple[float, float, float] | None = None
    input_dtype: str = "float32"
    cross_check: bool = False


# verify's float32 budgets for a plugin that declares none: those of the built-in networks (1e-5 relative on
# outputs and losses, 3e-5 on gradients; see dlbench.verify.tolerances).
DEFAULT_TOLERANCE: tuple[float, float, float] = (1e-5, 1e-5, 3e-5)


def check_target(target: str, what: str) -> None:
    """``module:attribute``, nothing else (an entry-point style reference that can be imported later)."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr or " " in target:
        raise WorkloadPluginError(f"{what} {target!r} is not of the form 'module:attribute'")


def check_batch(plugin: WorkloadPlugin, batch: object, batch_size: int) -> Batch:
    """``batch`` as the generator of ``plugin`` must return it for ``batch_size``: a :class:`Batch` whose ``x``
    is ``[batch_size, *input_shape]`` of the declared dtype and whose ``y`` holds ``batch_size`` labels."""
    w = plugin.workload
    if not isinstance(batch, Batch):
        raise WorkloadPluginError(f"workload {w.name!r}: the batch generator returned {type(batch).__name__}, "
                                  f"not a dlbench Batch")
    want = (batch_size, *w.input_shape)
    if tuple(batch.x.shape) != want:
        raise WorkloadPluginError(f"workload {w.name!r}: the batch generator returned inputs of shape "
                                  f"{tuple(batch.x.shape)}, the definition says {want}")
    if str(batch.x.dtype) != plugin.input_dtype:
        raise WorkloadPluginError(f"workload {w.name!r}: the batch generator returned {batch.x.dtype} inputs, "
                                  f"the definition says {plugin.input_dtype}")
    if tuple(np.shape(batch.y)) != (batch_size,):
        raise WorkloadPluginError(f"workload {w.name!r}: the batch generator returned labels of shape "
                                  f"{tuple(np.shape(batch.y))}, expected ({batch_size},)")
    return batch


def check_definition(name: str, plugin: object) -> WorkloadPlugin:
    """The static checks of a loaded entry point: the right type, the entry point's own name, every phase
    reading declared parameters, the declared parameter count, the builder and reference references."""
    if not isinstance(plugin, WorkloadPlugin):
        raise WorkloadPluginError(f"workload plugin {name!r} is a {type(plugin).__name__}, not a WorkloadPlugin")
    w = plugin.workload
    if w.name != name:
        raise WorkloadPluginError(f"workload plugin {name!r} defines a workload named {w.name!r}")
    if not w.phases:
        raise WorkloadPluginError(f"workload {name!r} has no phase (a single-phase workload has one named '')")
    known = {p.name for p in w.params}
    for phase in w.phases:
        unknown = [p for p in phase.reads if p not in known]
        if unknown:
            raise WorkloadPluginError(f"workload {name!r} phase {phase.name!r} reads undeclared parameter "
                                      f"{unknown[0]!r}")
        if phase.macs_per_sample <= 0:
            raise WorkloadPluginError(f"workload {name!r} phase {phase.name!r} declares {phase.macs_per_sample} "
                                      f"MACs per sample")
    if plugin.declared_params is not None and plugin.declared_params != w.total_params():
        raise WorkloadPluginError(f"workload {name!r} declares {plugin.declared_params:,} parameters, its "
                                  f"parameter table holds {w.total_params():,}")
    for framework, target in plugin.builders.items():
        check_target(target, f"workload {name!r}: the {framework} builder")
    if plugin.reference:
        check_target(plugin.reference, f"workload {name!r}: the reference")
    return plugin
