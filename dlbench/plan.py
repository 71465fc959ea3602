"""Turn a suite plus command-line overrides into the concrete, validated list of cases to run.

All checks that depend on this machine happen here, before anything is measured: which frameworks are
registered and installed, which variants they offer, whether a GPU is usable, how many cores there are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dlbench.errors import DlbenchError, SuiteError
from dlbench.frameworks.base import Adapter
from dlbench.frameworks.registry import get_adapter, installed_adapters
from dlbench.gpu import nvml_gpus
from dlbench.process.placement import available_cores
from dlbench.spec import Case
from dlbench.suite import Overrides, Suite, apply_overrides, expand, load_suite

FLEET_CORES = 1 << 16  # no limit: every node checks the thread counts against its own cores

# Every planned case is stored in run.json, which is rewritten after every case: a plan of a million cases
# (a suite listing thousands of batch sizes) is a mistake, refused before anything is written.
MAX_CASES = 20_000


@dataclass(frozen=True)
class Plan:
    suite: Suite
    frameworks: dict[str, tuple[str, ...]]  # framework -> variants
    cases: list[Case]


def resolve_frameworks(names: tuple[str, ...]) -> list[Adapter]:
    """Named frameworks must be registered and installed; none named means every installed one."""
    if not names:
        adapters = installed_adapters()
        if not adapters:
            raise DlbenchError("no framework is installed; install one, e.g. pip install 'dlbench[torch]'")
        return adapters
    adapters = []
    for name in dict.fromkeys(names):
        adapter = get_adapter(name)  # unknown name -> SuiteError
        if not adapter.is_installed():
            raise DlbenchError(f"framework {name!r} is not installed (pip install 'dlbench[{name}]')")
        adapters.append(adapter)
    return adapters


def resolve_variants(adapters: list[Adapter], requested: tuple[str, ...],
                     suite_variants: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Variants per framework: ``--variant`` names apply to every framework that has them (``all`` = all),
    otherwise the suite's table, otherwise each adapter's default."""
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
    return {fw: vs for fw, vs in chosen.items() if vs}


def check_gpu(suite: Suite, adapters: list[Adapter], explicit: bool) -> Suite:
    """``--device gpu`` without a usable GPU is an error; a suite's GPU section is skipped with a note."""
    if "gpu" not in suite.devices:
        return suite
    gpus = list(nvml_gpus())
    unusable = [a.name for a in adapters if not a.gpu_usable(gpus)]
    if not unusable:
        return suite
    why = "no GPU found by NVML" if not gpus else "installed build has no GPU support"
    if explicit:
        raise DlbenchError(f"--device gpu: no usable GPU for {', '.join(unusable)} ({why})")
    devices = {d: s for d, s in suite.devices.items() if d != "gpu"}
    if not devices:
        raise DlbenchError(f"suite {suite.name!r} runs on GPU only, and there is no usable GPU ({why})")
    note = f"gpu cases skipped: no usable GPU for {', '.join(unusable)} ({why})"
    return replace(suite, devices=devices, notes=(*suite.notes, note))


def make_plan(suite_name: str, overrides: Overrides, fleet: bool = False) -> Plan:
    """The cases to run. For a ``fleet`` the nodes, not this machine, decide what is possible: thread counts
    are not limited to the cores here and GPU cases stay (a node without a GPU is not given them)."""
    cores = FLEET_CORES if fleet else len(available_cores())
    suite = apply_overrides(load_suite(suite_name), overrides, cores)
    adapters = resolve_frameworks(suite.frameworks)
    if not fleet:
        suite = check_gpu(suite, adapters, explicit="gpu" in overrides.devices)
    frameworks = resolve_variants(adapters, overrides.variants, dict(suite.variants))
    if not frameworks:
        raise SuiteError("no framework offers the requested variants")
    by_name = {a.name: a for a in adapters}
    # a variant made for one workload (e.g. an attention implementation) is not run on the others
    cases = [c for c in expand(suite, frameworks) if by_name[c.framework].applies(c.variant, c.workload)]
    if len(cases) > MAX_CASES:
        raise SuiteError(f"the plan has {len(cases):,} cases, more than the {MAX_CASES:,} one run takes; narrow it "
                         "(--workload, --threads, --batch-size, --variant) or split the suite")
    return Plan(suite=suite, frameworks=frameworks, cases=cases)
