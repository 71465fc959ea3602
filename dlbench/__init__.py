"""dlbench: identical deep-learning workloads on several frameworks, measured honestly.

The package reads in the order data flows (docs/architecture.md draws the map): what to run (``cases``,
``plan``), the canonical work and its implementations (``workloads``, ``frameworks``), running it (``process``,
``runner``, ``fleet``), measuring inside a worker (``measure``), the machine (``machine``), what was measured
(``record``), numbers about numbers (``statistics``), reading it back (``verify``, ``regress``, ``report``,
``display``) and the command line (``cli``).

Modules that moved in 0.2 keep their old import paths for one release: importing one gives the module at its
new place with a :class:`DeprecationWarning` naming it, so a plugin written against 0.1 keeps working.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from types import ModuleType

__version__ = "0.1.0"

# Old module path -> new one (0.1 -> 0.2). Removed in the release after 0.2.
MOVED: dict[str, str] = {
    "dlbench.stats": "dlbench.statistics.samples",
    "dlbench.round_stats": "dlbench.statistics.rounds",
    "dlbench.regress.significance": "dlbench.statistics.significance",
    "dlbench.regress.moderated": "dlbench.statistics.moderated",
    "dlbench.spec": "dlbench.cases.spec",
    "dlbench.precision": "dlbench.cases.precision",
    "dlbench.env": "dlbench.machine.capture",
    "dlbench.gpu": "dlbench.machine.nvml",
    "dlbench.gpu_telemetry": "dlbench.machine.telemetry",
    "dlbench.gpu_probe": "dlbench.plan.gpu_probe",
    "dlbench.suite": "dlbench.plan.suite",
    "dlbench.calibrate": "dlbench.measure.calibrate",
    "dlbench.bandwidth": "dlbench.measure.bandwidth",
    "dlbench.control": "dlbench.runner.drift",
    "dlbench.record_v1": "dlbench.record.schema_v1",
    "dlbench.results": "dlbench.record.results",
    "dlbench.metrics": "dlbench.record.metrics",
    "dlbench.store": "dlbench.record.store",
    "dlbench.files": "dlbench.record.files",
    "dlbench.export": "dlbench.record.export",
    "dlbench.terminal": "dlbench.display.terminal",
    "dlbench.console": "dlbench.display.progress",
    "dlbench.regress.control": "dlbench.regress.normalize",
    "dlbench.regress.environment": "dlbench.regress.env_diff",
    "dlbench.regress.render": "dlbench.regress.verdict_render",
    "dlbench.report.environment": "dlbench.report.env_table",
    "dlbench.report.data": "dlbench.report.frame",
    "dlbench.verify.plan": "dlbench.verify.selection",
    "dlbench.verify.isolate": "dlbench.verify.launch",
    "dlbench.verify.worker": "dlbench.verify.job",
    "dlbench.verify.session": "dlbench.verify.judge",
    "dlbench.fleet.session": "dlbench.fleet.sweep",
    "dlbench.runner.isolate": "dlbench.runner.executor",
    "dlbench.frameworks.torch_": "dlbench.frameworks.torch.adapter",
    "dlbench.frameworks.tensorflow_": "dlbench.frameworks.tensorflow.adapter",
    "dlbench.frameworks.jax_": "dlbench.frameworks.jax.adapter",
}


def moved_warning(old: str, new: str) -> None:
    """Warn, at the importer's line, that ``old`` is now ``new``."""
    warnings.warn(f"{old} moved to {new} in dlbench 0.2; the old path goes in the next release",
                  DeprecationWarning, stacklevel=3)


class _MovedLoader:
    """Loads an old path as the module at its new place (one module object under both names)."""

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        moved_warning(spec.name, self.new)
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module at its new place is already executed."""


class _MovedFinder:
    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        return None if new is None else importlib.machinery.ModuleSpec(fullname, _MovedLoader(new))  # type: ignore[arg-type]


if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedFinder())  # type: ignore[arg-type]  # a finder by protocol (importlib.abc is slow to import)
