"""Turn the ``verify`` command line into a checked plan: which frameworks, variants and workload phases.

All validation of user input happens here, before any worker starts, and raises
:class:`~dlbench.errors.DlbenchError` with a one-line message (exit code 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dlbench.cases.spec import NATIVE_CONV, check_convs
from dlbench.errors import DlbenchError
from dlbench.frameworks.keras.adapter import KerasAdapter
from dlbench.plan.planner import resolve_frameworks
from dlbench.verify.collect import Target
from dlbench.workloads import keras_models, networks, select_phases


@dataclass(frozen=True)
class FrameworkPlan:
    name: str
    variants: tuple[str, ...]


@dataclass(frozen=True)
class VerifyPlan:
    frameworks: tuple[FrameworkPlan, ...]
    targets: tuple[Target, ...]
    notes: tuple[str, ...] = ()
    convs: tuple[str, ...] = (NATIVE_CONV,)  # convolution algorithms of the targets with convolutions


def parse_targets(items: Sequence[str]) -> tuple[Target, ...]:
    """``lenet`` (all phases of a workload) or ``autoencoder/pretrain2`` (one phase); default: everything."""
    if not items:
        return tuple(Target(w.name, p) for w in networks().values() for p in w.phase_names)
    targets: list[Target] = []
    for item in items:
        name, phases = select_phases(item)  # unknown workload or phase -> SuiteError (a DlbenchError)
        targets += [Target(name, p) for p in phases if Target(name, p) not in targets]
    return tuple(targets)


def make_plan(frameworks: Sequence[str], workloads: Sequence[str], variants: Sequence[str],
              convs: Sequence[str] = (), device: str = "cpu") -> VerifyPlan:
    """The checked plan. Without ``--variant``, a variant that exists on other devices only (a cuDNN switch on
    a CPU verify) is left out with a note, as ``dlbench run`` leaves it out; asked for by name, it is kept
    and reported ``unavailable`` with the reason."""
    targets = parse_targets(workloads)
    chosen_convs = check_convs(tuple(convs), "--conv") if convs else (NATIVE_CONV,)
    adapters = resolve_frameworks(tuple(frameworks))  # the same rules as dlbench run
    own = keras_models.definitions()  # Keras models of their own: only the Keras backends have them
    if not frameworks and targets and all(t.workload in own for t in targets):
        adapters = [a for a in adapters if isinstance(a, KerasAdapter)]
    wanted = tuple(dict.fromkeys(variants))
    known = {v for a in adapters for v in a.variants}
    unknown = [v for v in wanted if v not in known]
    if unknown:
        offered = ", ".join(f"{a.name}: {'/'.join(a.variants)}" for a in adapters) or "no framework selected"
        raise DlbenchError(f"unknown variant {unknown[0]!r} for the selected frameworks ({offered})")
    plans, notes = [], []
    for adapter in adapters:
        elsewhere = [] if wanted else [v for v in adapter.variants
                                       if device not in adapter.variant_devices.get(v, (device,))]
        chosen = tuple(v for v in adapter.variants if (not wanted or v in wanted) and v not in elsewhere)
        if elsewhere:
            notes.append(f"{adapter.name}: {', '.join(elsewhere)} not on {device} (left out)")
        if chosen:
            plans.append(FrameworkPlan(adapter.name, chosen))
        else:
            notes.append(f"{adapter.name}: skipped, it has none of the variants {', '.join(wanted)}")
    if not adapters:
        notes.append("no framework is installed: only the NumPy reference and the counts are checked")
    return VerifyPlan(tuple(plans), targets, tuple(notes), chosen_convs)
