"""Turn a suite plus command-line overrides into the concrete, validated list of cases to run.

All checks that depend on this machine happen here, before anything is measured: which frameworks are
registered and installed, which variants they offer, whether a GPU is usable, how many cores there are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dlbench.cases.spec import Case
from dlbench.errors import DlbenchError, SuiteError
from dlbench.frameworks.base import Adapter
from dlbench.frameworks.keras.adapter import KerasAdapter
from dlbench.frameworks.registry import get_adapter, installed_adapters
from dlbench.machine.nvml import describe_processes, gpu_processes, nvml_gpus
from dlbench.plan.gpu_probe import ProbeResult, probe_gpu
from dlbench.plan.suite import DeviceSettings, Overrides, Suite, apply_overrides, expand, load_suite
from dlbench.process.placement import available_cores
from dlbench.workloads import keras_models

FLEET_CORES = 1 << 16  # no limit: every node checks the thread counts against its own cores

# Every planned case is stored in run.json, which is rewritten whole at each compaction: a plan of a million cases
# (a suite listing thousands of batch sizes) is a mistake, refused before anything is written.
MAX_CASES = 20_000


@dataclass(frozen=True)
class Plan:
    suite: Suite
    frameworks: dict[str, tuple[str, ...]]  # framework -> variants
    cases: list[Case]
    gpu_probes: dict[str, dict[str, Any]] = field(default_factory=dict)  # framework -> what its GPU probe found


def resolve_frameworks(names: tuple[str, ...]) -> list[Adapter]:
    """Named frameworks must be registered and installed; none named means every installed one, and the
    Keras backends (``keras-jax`` ...) too when a Keras model was given (``keras:lenet=pkg.mod:fn``)."""
    if not names:
        adapters = installed_adapters()
        if keras_models.registered():
            keras = [a for a in installed_adapters(include_hidden=True) if isinstance(a, KerasAdapter)]
            if not keras:
                raise DlbenchError("a Keras model was given, but Keras 3 and a backend are not installed here "
                                   "(pip install keras, with jax, tensorflow or torch)")
            adapters += keras
        if not adapters:
            raise DlbenchError("no framework is installed; install one, e.g. pip install 'dlbench[torch]'")
        return adapters
    adapters = []
    for name in dict.fromkeys(names):
        adapter = get_adapter(name)  # unknown name -> SuiteError
        if not adapter.is_installed():
            hint = "pip install keras, and its backend" if isinstance(adapter, KerasAdapter) else \
                f"pip install 'dlbench[{name}]'"
            raise DlbenchError(f"framework {name!r} is not installed ({hint})")
        adapters.append(adapter)
    return adapters


def resolve_variants(adapters: list[Adapter], requested: tuple[str, ...],
                     suite_variants: dict[str, tuple[str, ...]],
                     suite_devices: Mapping[str, DeviceSettings] | None = None) -> dict[str, tuple[str, ...]]:
    """Variants per framework: ``--variant`` names apply to every framework that has them (``all`` = all),
    otherwise the suite's table, otherwise each adapter's default. A device's own ``variants`` table (which
    ``expand`` uses on that device instead) is checked here too."""
    suite_devices = suite_devices or {}
    chosen: dict[str, tuple[str, ...]] = {}
    for fw in suite_variants:
        get_adapter(fw)  # the suite may only name registered frameworks
    for adapter in adapters:
        if requested:
            if "all" in requested:
                chosen[adapter.name] = adapter.variants
                continue
            chosen[adapter.name] = tuple(v for v in requested if v in adapter.variants)
        elif adapter.name in suite_variants:
            for v in suite_variants[adapter.name]:
                if v not in adapter.variants:
                    raise SuiteError(f"framework {adapter.name!r} has no variant {v!r}; "
                                     f"variants: {', '.join(adapter.variants)}")
            chosen[adapter.name] = suite_variants[adapter.name]
        else:
            chosen[adapter.name] = (adapter.default_variant,)
    for v in requested:
        if v != "all" and not any(v in a.variants for a in adapters):
            known = "; ".join(f"{a.name}: {', '.join(a.variants)}" for a in adapters)
            raise SuiteError(f"unknown variant {v!r} (variants: {known})")
    for device, settings in suite_devices.items():
        for fw, names in settings.variants.items():
            adapter = get_adapter(fw)  # the suite may only name registered frameworks
            for v in names:
                if v not in adapter.variants:
                    raise SuiteError(f"devices.{device}.variants: framework {fw!r} has no variant {v!r}; "
                                     f"variants: {', '.join(adapter.variants)}")
    return {fw: vs for fw, vs in chosen.items() if vs}


@dataclass(frozen=True)
class GpuCheck:
    """What the GPU checks decided: the suite (GPU section kept or dropped, with notes), the frameworks whose
    GPU cases are left out, and what each probed framework reported (for the environment record)."""

    suite: Suite
    cpu_only: frozenset[str] = frozenset()
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)


def check_gpu(suite: Suite, adapters: list[Adapter], explicit: bool, named: frozenset[str] = frozenset(),
              probe: Callable[[Adapter], ProbeResult] | None = None) -> GpuCheck:
    """Which frameworks can run the suite's GPU cases here.

    A framework that cannot (NVML sees no GPU, a CPU-only build, a probe that failed) loses its GPU cases with
    a note; the others keep theirs. It is an error only when the user asked for something impossible: a GPU
    run (``--device gpu``, ``explicit``) where no framework can use the GPU, or a framework named on the
    command line (``named``) that cannot. A framework whose build looks GPU-capable is probed in a child
    process (``probe``, :func:`dlbench.plan.gpu_probe.probe_gpu`); under ``--device gpu`` its failure is a refusal
    with the framework's own error, since a broken GPU stack is what the user must hear about.
    """
    if "gpu" not in suite.devices:
        return GpuCheck(suite)
    gpus = list(nvml_gpus())
    reasons: dict[str, str] = {}
    for adapter in adapters:
        if not adapter.gpu_usable(gpus):
            reasons[adapter.name] = "no GPU found by NVML" if not gpus else "installed build has no GPU support"
    refused = sorted(named & set(reasons)) if explicit else []
    if refused:
        raise DlbenchError(f"--device gpu: no usable GPU for {refused[0]} ({reasons[refused[0]]})")
    probes: dict[str, dict[str, Any]] = {}
    for adapter in adapters:
        if adapter.name in reasons or probe is None:
            continue
        result = probe(adapter)
        if result.ok:
            probes[adapter.name] = result.info
            continue
        if explicit:
            raise DlbenchError(f"--device gpu: {adapter.name} fails on the GPU: {result.error}")
        reasons[adapter.name] = f"GPU probe failed: {result.error}"
    usable = [a.name for a in adapters if a.name not in reasons]
    why = "; ".join(f"{name}: {reason}" for name, reason in reasons.items())
    if not usable:
        if explicit:
            raise DlbenchError(f"--device gpu: no usable GPU ({why})")
        devices = {d: s for d, s in suite.devices.items() if d != "gpu"}
        if not devices:
            raise DlbenchError(f"suite {suite.name!r} runs on GPU only, and there is no usable GPU ({why})")
        note = f"gpu cases skipped: no usable GPU ({why})"
        return GpuCheck(replace(suite, devices=devices, notes=(*suite.notes, note)), probes=probes)
    notes = list(suite.notes)
    if reasons:
        notes.append(f"gpu cases of {', '.join(reasons)} left out ({why}); {', '.join(usable)} run on the GPU")
    busy = gpu_processes()
    if busy:
        notes.append(f"warning: other processes are using the GPU, they share it with the measurement "
                     f"({describe_processes(busy)})")
    return GpuCheck(replace(suite, notes=tuple(notes)), frozenset(reasons), probes)


def check_selected_gpu(selector: str, gpus: Sequence[Mapping[str, Any]]) -> None:
    """A GPU named by ``--gpu`` or the suite must be one NVML lists here (by index or UUID). Unchecked where
    NVML lists none (the GPU check then decides) and for MIG slices, which NVML lists under their parent."""
    if not selector or not gpus or selector.startswith("MIG-"):
        return
    known = [str(g["index"]) for g in gpus if "index" in g] + [str(g["uuid"]) for g in gpus if g.get("uuid")]
    if selector not in known:
        listed = ", ".join(f"{g.get('index')} {g.get('uuid', '')}".strip() for g in gpus)
        raise DlbenchError(f"--gpu {selector}: no such GPU here (NVML lists {listed})")


def make_plan(suite_name: str, overrides: Overrides, fleet: bool = False,
              probe: Callable[[Adapter], ProbeResult] | None = probe_gpu) -> Plan:
    """The cases to run. For a ``fleet`` the nodes, not this machine, decide what is possible: thread counts
    are not limited to the cores here and GPU cases stay (a node without a GPU is not given them)."""
    cores = FLEET_CORES if fleet else len(available_cores())
    suite = apply_overrides(load_suite(suite_name), overrides, cores)
    adapters = resolve_frameworks(suite.frameworks)
    gpu = GpuCheck(suite)
    if not fleet:
        if "gpu" in suite.devices:
            check_selected_gpu(suite.gpu, nvml_gpus())
        if probe is probe_gpu and suite.gpu:  # the probe starts where the workers will: on the chosen GPU
            probe = functools.partial(probe_gpu, gpu=suite.gpu)
        gpu = check_gpu(suite, adapters, explicit="gpu" in overrides.devices,
                        named=frozenset(overrides.frameworks), probe=probe)
        suite = gpu.suite
    frameworks = resolve_variants(adapters, overrides.variants, dict(suite.variants), suite.devices)
    if not frameworks:
        raise SuiteError("no framework offers the requested variants")
    by_name = {a.name: a for a in adapters}
    # a variant made for one workload (e.g. an attention implementation) is not run on the others
    own_models = keras_models.definitions()  # Keras models of their own: only the Keras backends build them
    cases = [c for c in expand(suite, frameworks) if by_name[c.framework].applies(c.variant, c.workload)
             and not (c.device == "gpu" and c.framework in gpu.cpu_only)
             and not (c.workload in own_models and not isinstance(by_name[c.framework], KerasAdapter))]
    if len(cases) > MAX_CASES:
        raise SuiteError(f"the plan has {len(cases):,} cases, more than the {MAX_CASES:,} one run takes; narrow it "
                         "(--workload, --threads, --batch-size, --variant) or split the suite")
    return Plan(suite=suite, frameworks=frameworks, cases=cases, gpu_probes=gpu.probes)
