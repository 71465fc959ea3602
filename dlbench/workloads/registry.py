"""Every workload dlbench knows, found through the ``dlbench.workloads`` entry-point group.

The built-in networks are registered in ``pyproject.toml`` exactly like a third-party plugin (the way
``dlbench.frameworks.registry`` treats adapters), so every lookup here serves both: the name lists of
``list``, suites and ``verify``, the definitions the runner measures, the batches and the per-framework
builders. The layer benchmarks (``conv:<network>.<layer>``) are derived from every registered network that
declares its convolutions.

A plugin that does not load or does not check out (:func:`dlbench.workloads.plugin.check_definition`, one
trial batch) is *broken*: it is left out of every list, :func:`broken_workloads` says why in one line, and
naming it is a one-line :class:`~dlbench.workloads.plugin.WorkloadPluginError`. Only installed entry points
are loaded; builders are imported on demand (:func:`load_builder`), in the worker of their own framework.
"""

from __future__ import annotations

import importlib.metadata
from functools import cache

import numpy as np

from dlbench.errors import SuiteError
from dlbench.workloads.data import Batch, default_batch, derive_seed
from dlbench.workloads.definitions import LAYER_PREFIX, Workload, layer_workload
from dlbench.workloads.keras_models import (
    KERAS_BUILDER,
    definitions,
    is_keras_entry,
    is_own_model,
    keep_definition,
    parse_keras_entry,
    register,
    registered,
    working_directory_importable,
)
from dlbench.workloads.plugin import TRIAL_BATCH, WorkloadPlugin, WorkloadPluginError, check_batch, check_definition

GROUP = "dlbench.workloads"


@cache
def _entry_points() -> dict[str, str]:
    """Registered workloads by name: ``module:attribute`` of each (later registrations of a name win)."""
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=GROUP)}


def reset() -> None:
    """Forget every loaded plugin (tests that register plugins of their own call this)."""
    for cached in (_entry_points, _load, _registered, load_builder):
        cached.cache_clear()


@cache
def _load(name: str, target: str) -> WorkloadPlugin:
    try:
        plugin = importlib.metadata.EntryPoint(name, target, GROUP).load()
    except Exception as exc:  # a broken plugin must not take the whole tool down
        raise WorkloadPluginError(f"workload plugin {name!r} ({target}) failed to load: "
                                  f"{type(exc).__name__}: {exc}") from None
    checked = check_definition(name, plugin)
    try:
        _draw(checked, TRIAL_BATCH, 0)
    except WorkloadPluginError:
        raise
    except Exception as exc:  # noqa: BLE001 - the generator's own bug, reported as the workload's error
        raise WorkloadPluginError(f"workload {name!r}: the batch generator raised {type(exc).__name__}: "
                                  f"{exc}") from None
    return checked


def _layer_plugin(network: WorkloadPlugin, layer: Workload) -> WorkloadPlugin:
    """A layer benchmark: built by each adapter's generic layer builder, its reference the generic one."""
    return WorkloadPlugin(workload=layer, builders={}, reference="", declared_params=None,
                          tolerance=network.tolerance)


def _keras_plugin(name: str, described: dict[str, object]) -> WorkloadPlugin:
    """A Keras model of its own as a workload: its derived definition, its one builder, no reference."""
    from dlbench.workloads.keras_describe import Described, workload_of

    return WorkloadPlugin(workload=workload_of(name, Described(**described)),  # type: ignore[arg-type]
                          builders={KERAS_BUILDER: parse_keras_entry(name)[1]}, cross_check=True)


def _ordered(names: list[str]) -> list[str]:
    from dlbench.workloads.builtin import BUILTIN_ORDER

    rank = {name: i for i, name in enumerate(BUILTIN_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


@cache
def _registered() -> tuple[dict[str, WorkloadPlugin], dict[str, WorkloadPlugin], dict[str, str]]:
    """(networks, layer benchmarks, broken plugins with their one-line reasons), built-ins first."""
    networks: dict[str, WorkloadPlugin] = {}
    broken: dict[str, str] = {}
    found = _entry_points()
    for name in _ordered(list(found)):
        try:
            networks[name] = _load(name, found[name])
        except WorkloadPluginError as exc:
            broken[name] = str(exc)
    for name, described in definitions().items():  # Keras models of their own (keras:pkg.mod:fn)
        networks[name] = _keras_plugin(name, described)
    layers = {w.name: _layer_plugin(p, w) for p in networks.values()
              for w in (layer_workload(p.workload, c) for c in p.workload.convolutions)}
    return networks, layers, broken


def networks() -> dict[str, Workload]:
    """Every registered network that loads (built-ins first, then plugins by name)."""
    return {name: p.workload for name, p in _registered()[0].items()}


def layer_workloads() -> dict[str, Workload]:
    """The layer benchmarks: every convolution of every registered network, as a workload of its own."""
    return {name: p.workload for name, p in _registered()[1].items()}


def broken_workloads() -> dict[str, str]:
    """Registered workloads that fail to load or to check, with the reason (``dlbench list`` shows them)."""
    return dict(_registered()[2])


def get_plugin(name: str) -> WorkloadPlugin:
    networks_, layers, broken = _registered()
    found = networks_.get(name) or layers.get(name)
    if found is not None:
        return found
    if name in broken:
        raise WorkloadPluginError(broken[name])
    if not networks_ and not broken:  # even the built-ins are missing: the install's metadata is stale
        raise SuiteError(f"unknown workload {name!r}: no workload is registered (entry points of the group "
                         f"{GROUP} are missing; reinstall dlbench: make setup, or pip install -e .)")
    extra = f"; layers: {', '.join(layers)}" if name.startswith(LAYER_PREFIX) else ""
    raise SuiteError(f"unknown workload {name!r}; known: {', '.join(networks_)}{extra}")


def get_workload(name: str) -> Workload:
    """The definition of a registered network or layer benchmark (SuiteError for any other name)."""
    return get_plugin(name).workload


def workload_names() -> tuple[str, ...]:
    """The networks: what a suite runs when it names no workloads."""
    return tuple(_registered()[0])


def all_workload_names() -> tuple[str, ...]:
    """The networks, then the layer benchmarks: every name a suite or ``--workload`` may give."""
    return (*_registered()[0], *_registered()[1])


def is_sequence_workload(name: str) -> bool:
    """Token-id workloads (the LSTM and the transformer): batches carry sequence lengths."""
    return "maxlen" in get_workload(name).extra


def _draw(plugin: WorkloadPlugin, batch_size: int, seed: int) -> Batch:
    spec = plugin.workload
    rng = np.random.default_rng(derive_seed("batch", spec.name, batch_size, seed))
    generate = plugin.batch or default_batch
    return check_batch(plugin, generate(spec, batch_size, rng), batch_size)


def make_batch(workload: str, batch_size: int, seed: int = 0) -> Batch:
    """The canonical input batch of ``workload`` for ``batch_size`` and ``seed``, from its plugin's generator
    (or dlbench's own), checked against the declared shape and dtype every time."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return _draw(get_plugin(workload), batch_size, seed)


@cache
def load_builder(workload: str, framework: str) -> object | None:
    """The builder that ``workload``'s plugin names for ``framework``, imported now (in that framework's
    worker); None when the plugin names none. A builder that does not import is a one-line error. For
    ``framework`` :data:`~dlbench.workloads.keras_models.KERAS_BUILDER` a Keras model given on the command line
    (:mod:`dlbench.workloads.keras_models`) comes first."""
    from_command_line = registered().get(workload) if framework == KERAS_BUILDER else None
    target = from_command_line or get_plugin(workload).builders.get(framework)
    if target is None:
        return None
    try:
        if from_command_line:
            with working_directory_importable():
                return importlib.metadata.EntryPoint(workload, target, GROUP).load()
        return importlib.metadata.EntryPoint(workload, target, GROUP).load()
    except Exception as exc:  # noqa: BLE001 - the plugin's bug, reported as this workload's error
        raise WorkloadPluginError(f"workload {workload!r}: the {framework} builder {target} failed to import: "
                                  f"{type(exc).__name__}: {exc}") from None


def entry_workload(entry: str) -> str:
    """The workload an entry of a suite's ``workloads`` (or of ``--workload``) names: ``lenet`` for ``lenet``,
    ``autoencoder/pretrain2`` and ``keras:lenet=pkg.mod:fn``. Nothing is registered or checked."""
    if is_keras_entry(entry):
        return parse_keras_entry(entry)[0]
    return entry.partition("/")[0]


def select_phases(selector: str) -> tuple[str, tuple[str, ...]]:
    """``lenet`` (every phase of a workload) or ``autoencoder/pretrain2`` (one phase): the workload's name
    and the phases selected, as results name them. SuiteError for an unknown workload or phase.
    ``keras:lenet=pkg.mod:fn`` selects every phase of ``lenet`` and registers the Keras model as its Keras
    implementation (:func:`dlbench.workloads.keras_models.register`)."""
    if is_keras_entry(selector):
        name, target = parse_keras_entry(selector)
        if is_own_model(selector):
            register(selector)  # the module can be found
            if name not in definitions():
                from dlbench.workloads.keras_describe import describe

                keep_definition(name, describe(selector, target).to_wire())
                reset()
        else:
            get_workload(name)  # an unknown workload first: its message lists the known ones
            register(selector)
        load_builder.cache_clear()
        return name, get_workload(name).phase_names
    name, _, phase = selector.partition("/")
    workload = get_workload(name)
    return name, ((workload.phase(phase).name,) if phase else workload.phase_names)


def forward_flops(workload: str, phase: str, batch_size: int) -> float:
    """Floating-point operations of one forward pass over a batch: 2 per multiply-accumulate."""
    return 2.0 * get_workload(workload).macs(phase) * batch_size


def pass_flops(workload: str, phase: str, pass_: str, batch_size: int, macs: int | None = None) -> float:
    """FLOPs of a timed pass. The gradient pass is counted as 3x the forward pass (forward + a backward of
    about twice its cost), the usual convention (e.g. Kaplan et al. 2020); it is an estimate, documented
    as such in the README, while the forward count is exact for the layers that dominate. With ``macs`` (a
    stored result's MACs per sample) a workload not registered in this process (a Keras model of its own,
    an uninstalled plugin) is counted from them instead of raising."""
    factor = 1.0 if pass_ == "forward" else 3.0
    if macs is not None and workload not in all_workload_names():
        return factor * 2.0 * macs * batch_size
    return factor * forward_flops(workload, phase, batch_size)

