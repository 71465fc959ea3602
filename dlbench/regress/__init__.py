"""Regression tracking for CI: compare two runs, follow cases through a history of runs.

``verdict`` decides (statistics in ``significance``, environment checks in ``environment``), ``render``
presents a comparison, ``steps`` finds change points in a series of medians for ``dlbench history``.
"""

from dlbench.regress.threshold import parse_alpha, parse_threshold
from dlbench.regress.verdict import (
    FAILED,
    IMPROVED,
    MISSING,
    NEW,
    REGRESSED,
    UNCHANGED,
    CaseComparison,
    Comparison,
    Policy,
    compare_runs,
)

__all__ = [
    "FAILED",
    "IMPROVED",
    "MISSING",
    "NEW",
    "REGRESSED",
    "UNCHANGED",
    "CaseComparison",
    "Comparison",
    "Policy",
    "compare_runs",
    "parse_alpha",
    "parse_threshold",
]
