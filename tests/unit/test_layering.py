"""The package's layering, checked over its source: no module imports a module of a higher layer.

The layers are those of docs/architecture.md, lowest first. A module may import modules of its own layer
and of lower ones, never of a higher one; every import counts, at module level or inside a function (a lazy
import is still a dependency, only a later one) and under ``TYPE_CHECKING``. The unit of a module is its
top-level name under ``dlbench``: ``dlbench.runner.worker`` belongs to ``runner``; the package itself
(``from dlbench import __version__``) is the unit ``dlbench``.

A new top-level module or subpackage must be placed in a layer here (and in docs/architecture.md): an
unplaced one fails the test with a message saying so, rather than passing unchecked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "dlbench"
SOURCE = Path(__file__).resolve().parents[2] / PACKAGE
HERE = "tests/unit/test_layering.py"

# Lowest first: the stages of the pipeline, each importing only earlier stages and the shared modules. To add
# a package: put it in the stage whose packages it needs at most (a stage may hold several packages).
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    # What every layer uses: the version, error types, number formatting for people.
    ("shared", frozenset({"dlbench", "errors", "formatting"})),
    # Pure functions on samples and rounds, light enough for the timing loop.
    ("statistics", frozenset({"statistics"})),
    # Starting, pinning, watching and ending child processes, whatever they run.
    ("process", frozenset({"process"})),
    # The machine, read without a framework: environment record, GPU discovery, GPU telemetry.
    ("machine", frozenset({"machine"})),
    # The canonical work, and what one case of it is.
    ("workloads", frozenset({"workloads"})),
    ("cases", frozenset({"cases"})),
    # The adapters: the canonical work in each framework's own terms.
    ("frameworks", frozenset({"frameworks"})),
    # Measuring inside a worker or a pinned child.
    ("measure", frozenset({"measure"})),
    # What was measured, and how it is kept.
    ("record", frozenset({"record"})),
    # What to run: suite files and the plan.
    ("plan", frozenset({"plan"})),
    # Running it: on this machine, then across a Ray cluster.
    ("runner", frozenset({"runner"})),
    ("fleet", frozenset({"fleet"})),
    # Reading it back: the terminal, verification, comparison and history, reports.
    ("display", frozenset({"display"})),
    ("analysis", frozenset({"verify", "regress"})),
    ("report", frozenset({"report"})),
    # The command line.
    ("interface", frozenset({"cli", "__main__"})),
)

# Imports allowed against the layering, (importing unit, imported unit) -> the reason. Each is a debt to pay.
EXCEPTIONS: Mapping[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "dlbench.runner.worker"
    target: str  # the imported module or name, e.g. "dlbench.store.now_iso"
    line: int
    lazy: bool  # inside a function or method

    @property
    def where(self) -> str:
        return f"{self.module.replace('.', '/')}.py:{self.line}{' (lazy)' if self.lazy else ''}"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module of a relative ``from . import x`` / ``from ..a import b``."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    """Every import of the package in one file, with whether it sits inside a function."""
    module = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def visit(node: ast.AST, lazy: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(module, alias.name, child.lineno, lazy)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(module, path.name == "__init__.py", child)
                for alias in child.names:
                    yield Import(module, f"{base}.{alias.name}", child.lineno, lazy)
            yield from visit(child, inner)

    for found in visit(tree, False):
        if found.target == PACKAGE or found.target.startswith(PACKAGE + "."):
            yield found


def unit_of(name: str) -> str:
    """``dlbench.runner.worker`` -> ``runner``; ``dlbench.__version__`` (a name in the package) -> ``dlbench``."""
    parts = name.split(".")
    if len(parts) == 1 or parts[1].startswith("__") and parts[1] != "__main__":
        return PACKAGE
    return parts[1]


def units_on_disk(root: Path) -> set[str]:
    units = {PACKAGE}
    for path in root.iterdir():
        if path.suffix == ".py" and path.name != "__init__.py":
            units.add(path.stem)
        elif path.is_dir() and (path / "__init__.py").exists():
            units.add(path.name)
    return units


def violations(root: Path, layers: tuple[tuple[str, frozenset[str]], ...],
               exceptions: Mapping[tuple[str, str], str]) -> list[str]:
    """Every problem with the layering of the package at ``root``, one readable line each."""
    rank = {unit: index for index, (_, units) in enumerate(layers) for unit in units}
    name = {unit: layer for layer, units in layers for unit in units}
    problems = [
        f"{root.name}/{unit} is in no layer: add {unit!r} to LAYERS in {HERE} (and to docs/architecture.md)"
        for unit in sorted(units_on_disk(root) - set(rank))
    ]
    for path in sorted(root.rglob("*.py")):
        for imp in imports_of(path, root):
            source, target = unit_of(imp.module), unit_of(imp.target)
            if source not in rank or (source, target) in exceptions:
                continue
            if target not in rank:
                problems.append(f"{imp.where} imports {imp.target}, whose unit {target!r} is in no layer: "
                                f"add it to LAYERS in {HERE}")
            elif rank[target] > rank[source]:
                problems.append(f"{imp.where} imports {imp.target}: {source} ({name[source]}) must not depend on "
                                f"{target} ({name[target]}, a higher layer)")
    return problems


# ----- the package itself -----
def test_no_module_imports_a_higher_layer() -> None:
    problems = violations(SOURCE, LAYERS, EXCEPTIONS)
    assert not problems, "layering violated:\n" + "\n".join(problems)


def test_every_unit_is_in_exactly_one_layer_and_every_exception_is_still_needed() -> None:
    placed = [unit for _, units in LAYERS for unit in units]
    assert len(placed) == len(set(placed)), "a unit is in two layers"
    assert set(placed) <= units_on_disk(SOURCE) | {"__main__"}, "LAYERS names a unit that no longer exists"
    used = {(unit_of(i.module), unit_of(i.target)) for p in SOURCE.rglob("*.py") for i in imports_of(p, SOURCE)}
    assert set(EXCEPTIONS) <= used, "an exception is no longer needed: remove it"


def test_the_documented_layers_are_the_checked_ones() -> None:
    doc = (SOURCE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for layer, units in LAYERS:
        assert f"**{layer}**" in doc, layer
        for unit in units:
            assert f"`{unit}`" in doc, f"{unit} is not in docs/architecture.md"


# ----- the check can fail -----
def write(root: Path, files: Mapping[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / PACKAGE


TOY_LAYERS = (("low", frozenset({"dlbench", "errors", "spec"})), ("high", frozenset({"runner", "cli"})))


def test_an_upward_import_is_reported_even_when_lazy(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "dlbench/__init__.py": "",
        "dlbench/errors.py": "def f():\n    from dlbench.runner import worker\n",
        "dlbench/spec.py": "from . import errors\nfrom .errors import f\n",
        "dlbench/runner/__init__.py": "",
        "dlbench/runner/worker.py": "import dlbench.spec\nfrom ..errors import f\n",
        "dlbench/cli.py": "from dlbench import runner\n",
    })
    problems = violations(root, TOY_LAYERS, {})
    assert problems == [
        "dlbench/errors.py:2 (lazy) imports dlbench.runner.worker: errors (low) must not depend on runner "
        "(high, a higher layer)"
    ]
    assert violations(root, TOY_LAYERS, {("errors", "runner"): "test"}) == []


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "dlbench/__init__.py": "",
        "dlbench/errors.py": "",
        "dlbench/spec.py": "from .runner.worker import x\n",
        "dlbench/runner/__init__.py": "from . import worker\n",
        "dlbench/runner/worker.py": "from .. import spec\nx = 1\n",
    })
    problems = violations(root, TOY_LAYERS, {})
    assert len(problems) == 1 and problems[0].startswith("dlbench/spec.py:1 imports dlbench.runner.worker.x")


def test_an_unplaced_module_fails_loudly_and_says_where_to_add_it(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "dlbench/__init__.py": "",
        "dlbench/errors.py": "",
        "dlbench/ray_executor.py": "from dlbench import errors\n",
        "dlbench/spec.py": "from dlbench.scheduler import plan\n",
    })
    problems = violations(root, TOY_LAYERS, {})
    assert f"dlbench/ray_executor is in no layer: add 'ray_executor' to LAYERS in {HERE}" in problems[0]
    assert "dlbench/spec.py:1 imports dlbench.scheduler.plan, whose unit 'scheduler' is in no layer" in problems[1]


@pytest.mark.parametrize(("name", "unit"), [
    ("dlbench", "dlbench"), ("dlbench.__version__", "dlbench"), ("dlbench.runner.worker", "runner"),
    ("dlbench.__main__", "__main__"), ("dlbench.statistics.samples.summarize", "statistics"),
])
def test_units(name: str, unit: str) -> None:
    assert unit_of(name) == unit


# ----- the top of the package, and the old paths -----
SHARED_MODULES = {"__init__", "__main__", "errors", "formatting"}


def test_the_top_of_the_package_holds_packages_and_the_shared_modules_only() -> None:
    loose = {path.stem for path in SOURCE.glob("*.py")}
    assert loose <= SHARED_MODULES, f"loose modules at the top of dlbench/: {sorted(loose - SHARED_MODULES)}"


def test_every_moved_module_is_importable_from_its_old_path_with_a_warning() -> None:
    import importlib
    import sys
    import warnings

    import dlbench

    for old, new in dlbench.MOVED.items():
        sys.modules.pop(old, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.import_module(old)
        assert module is importlib.import_module(new), old
        assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught), old
        assert not (SOURCE.parent / (old.replace(".", "/") + ".py")).exists(), f"{old} is still a file"


def test_names_of_the_old_plan_and_record_modules_still_resolve_with_a_warning() -> None:
    import dlbench.plan
    import dlbench.record
    from dlbench.plan.planner import make_plan
    from dlbench.record.schema import RunConfig

    with pytest.warns(DeprecationWarning, match="dlbench.plan.planner.make_plan"):
        assert dlbench.plan.make_plan is make_plan
    with pytest.warns(DeprecationWarning, match="dlbench.record.schema.RunConfig"):
        assert dlbench.record.RunConfig is RunConfig
    with pytest.raises(AttributeError):
        _ = dlbench.record.no_such_name


ADAPTER_FILE_LINES = 400  # an adapter's parts stay small enough to read whole: one network, one binding table


def test_no_file_of_an_adapter_is_longer_than_its_limit() -> None:
    long = {str(path.relative_to(SOURCE)): n for path in (SOURCE / "frameworks").rglob("*.py")
            if (n := len(path.read_text().splitlines())) > ADAPTER_FILE_LINES}
    assert not long, f"files of dlbench/frameworks over {ADAPTER_FILE_LINES} lines: {long}"


def test_the_built_in_entry_points_name_the_adapter_packages() -> None:
    import tomllib

    project = tomllib.loads((SOURCE.parent / "pyproject.toml").read_text())
    targets = project["project"]["entry-points"]["dlbench.adapters"]
    for name in ("torch", "tensorflow", "jax"):
        assert targets[name].startswith(f"dlbench.frameworks.{name}.adapter:"), targets[name]
