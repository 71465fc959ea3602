"""Find adapters through the ``dlbench.adapters`` entry-point group.

The built-in adapters are registered in ``pyproject.toml`` exactly like third-party plugins, so the
same code path serves both. Only installed entry points are loaded: no path or module name from a suite
file or the command line is ever imported.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from functools import cache

from dlbench.errors import SuiteError
from dlbench.frameworks.base import Adapter

GROUP = "dlbench.adapters"


class PluginError(SuiteError):
    """An entry point that does not load into a working adapter."""


@dataclass(frozen=True)
class AdapterEntry:
    name: str
    target: str  # "module:Class"

    def load(self) -> Adapter:
        try:
            cls = importlib.metadata.EntryPoint(self.name, self.target, GROUP).load()
            adapter = cls()
        except Exception as exc:  # a broken plugin must not take the whole tool down
            raise PluginError(f"adapter plugin {self.name!r} ({self.target}) failed to load: "
                              f"{type(exc).__name__}: {exc}") from None
        if not isinstance(adapter, Adapter):
            raise SuiteError(f"entry point {self.name!r} ({self.target}) is not a dlbench Adapter")
        return adapter


@cache
def entries() -> dict[str, AdapterEntry]:
    """All registered adapters by name (later registrations of a name win, as with pip)."""
    found: dict[str, AdapterEntry] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        found[ep.name] = AdapterEntry(ep.name, ep.value)
    return found


@cache
def get_adapter(name: str) -> Adapter:
    known = entries()
    if name not in known:
        raise SuiteError(f"unknown framework {name!r}; registered: {', '.join(sorted(known)) or '(none)'}")
    return known[name].load()


def broken_adapters() -> dict[str, str]:
    """Registered adapters that fail to load, with the reason (shown by ``dlbench list``)."""
    broken = {}
    for name in sorted(entries()):
        try:
            get_adapter(name)
        except PluginError as exc:
            broken[name] = str(exc)
    return broken


def adapter_names(include_hidden: bool = False) -> list[str]:
    """Names of the adapters that load (broken plugins are left out; see :func:`broken_adapters`)."""
    names = []
    for name in sorted(entries()):
        try:
            adapter = get_adapter(name)
        except PluginError:
            continue
        if include_hidden or not adapter.hidden:
            names.append(name)
    return names


def installed_adapters(include_hidden: bool = False) -> list[Adapter]:
    """Adapters whose framework is importable here, in a stable order (torch, tensorflow, jax, others)."""
    order = {"torch": 0, "tensorflow": 1, "jax": 2}
    adapters = [get_adapter(n) for n in adapter_names(include_hidden)]
    adapters = [a for a in adapters if a.is_installed()]
    return sorted(adapters, key=lambda a: (order.get(a.name, 9), a.name))
