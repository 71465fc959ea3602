"""Keras 3 models named on the command line or in a suite: ``keras:<workload>=<module>:<function>``.

Such an entry names a dlbench workload (``lenet``) and a function that returns an uncompiled Keras 3 model of
it. It runs that workload, and makes the function the workload's Keras implementation, the one the
``keras-jax``, ``keras-tensorflow`` and ``keras-torch`` adapters build (:mod:`dlbench.frameworks.keras`): the
model is then measured beside the native implementations of the same workload, in the same rows, with the same
canonical weights and batches, and ``verify`` checks it against the same NumPy reference.

A workload plugin can also name a Keras implementation of its own, under the builder key :data:`KERAS_BUILDER`;
an entry given on the command line takes precedence.

The registrations of this process are kept in the environment variable :data:`ENV` (``lenet=module:function``,
comma-separated), so that every worker the process starts (they inherit its environment) builds the same model.
Nothing is imported here: the parent only checks that the module can be found, the worker imports it.

``keras:<module>:<function>`` (no workload) is a Keras model of its own: its definition is derived from the
model (:mod:`dlbench.workloads.keras_describe`, in a child process), registered as a workload named by the
entry itself, and kept in :data:`DEFINITIONS_ENV` (JSON) for the workers. It has no NumPy reference: ``verify``
compares the Keras backends with each other (they all run the same model code, so their agreement is what
there is to check).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from dlbench.errors import SuiteError
from dlbench.workloads.plugin import WorkloadPluginError, check_target

KERAS_PREFIX = "keras:"
KERAS_BUILDER = "keras"  # the builders key that every Keras adapter reads
ENV = "DLBENCH_KERAS_MODELS"
DEFINITIONS_ENV = "DLBENCH_KERAS_DEFINITIONS"  # the derived definitions of Keras models of their own (JSON)
EXAMPLE = "keras:lenet=examples.keras_lenet:build_model"


def is_keras_entry(entry: str) -> bool:
    return entry.startswith(KERAS_PREFIX)


def parse_keras_entry(entry: str) -> tuple[str, str]:
    """``keras:lenet=pkg.mod:fn`` as (``lenet``, ``pkg.mod:fn``), ``keras:pkg.mod:fn`` as (the entry,
    ``pkg.mod:fn``); a one-line SuiteError for any other form."""
    body = entry[len(KERAS_PREFIX):]
    name, sep, target = body.partition("=")
    if not sep:  # a model of its own: the workload is named by the entry itself
        name, target = entry, body
    if not name.strip() or name != name.strip() or ("/" in name and name != entry):
        raise SuiteError(f"{entry!r}: {name!r} is not a workload name (e.g. {EXAMPLE})")
    try:
        check_target(target, f"{entry!r}: the Keras model")
    except WorkloadPluginError as exc:
        raise SuiteError(f"{exc} (e.g. {EXAMPLE})") from None
    return name, target


def registered() -> dict[str, str]:
    """The Keras models of this process (and of the process that started it): workload -> ``module:function``."""
    found: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in os.environ.get(ENV, "").split(","))):
        name, _, target = item.partition("=")
        found[name.strip()] = target.strip()
    return found


@contextmanager
def working_directory_importable() -> Iterator[None]:
    """The current directory on ``sys.path`` while a user's module is looked up or imported, as ``python -m``
    has it (the ``dlbench`` script's own path does not include it)."""
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        yield
    finally:
        if added and here in sys.path:
            sys.path.remove(here)


def check_importable(module: str, entry: str) -> None:
    """The module of a Keras entry can be found (it is not imported: that happens in the workers)."""
    try:
        with working_directory_importable():
            found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        found = None
        reason = f"{type(exc).__name__}: {exc}"
    else:
        reason = "no such module"
    if found is None:
        raise SuiteError(f"{entry!r}: module {module!r} cannot be imported ({reason}; the current directory "
                         f"and the installed packages are searched)")


def is_own_model(entry: str) -> bool:
    """``keras:pkg.mod:fn``: a Keras model that names no dlbench workload."""
    return is_keras_entry(entry) and "=" not in entry


def definitions() -> dict[str, dict[str, object]]:
    """The derived definitions of this process's Keras models of their own, by workload name (the fields of
    :class:`dlbench.workloads.keras_describe.Described`)."""
    text = os.environ.get(DEFINITIONS_ENV, "")
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        raise SuiteError(f"{DEFINITIONS_ENV} is not JSON: unset it") from None
    return found if isinstance(found, dict) else {}


def keep_definition(name: str, described: dict[str, object]) -> None:
    os.environ[DEFINITIONS_ENV] = json.dumps({**definitions(), name: described})


def register(entry: str) -> str:
    """Make the model of ``entry`` its workload's Keras implementation in this process and its workers;
    returns the workload's name. The same workload with two different models is an error."""
    name, target = parse_keras_entry(entry)
    check_importable(target.partition(":")[0], entry)
    models = registered()
    if models.get(name, target) != target:
        raise SuiteError(f"{entry!r}: workload {name!r} already has the Keras model {models[name]} in this run")
    models[name] = target
    os.environ[ENV] = ",".join(f"{n}={t}" for n, t in models.items())
    return name
