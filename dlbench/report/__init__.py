"""Reports: comparison tables (HTML + CSV) and plots built from stored runs only.

``build_report(run_dirs, output, batch_size=None) -> Path`` is the entry point used by ``dlbench report``
and ``dlbench run --report``.
"""

from dlbench.report.build import build_report

__all__ = ["build_report"]
