"""Comparison and history: compare two runs (or the sides of an A/B run), follow cases through many runs.

``verdict`` decides (statistics in :mod:`dlbench.statistics`, environment checks in ``env_diff``, the
control-kernel normalisation in ``normalize``, A/B runs in ``within``), ``verdict_render`` presents a
comparison. ``history`` gathers the stored runs of each case in order and ``steps`` finds the
change points in their medians; ``history_render`` and ``history_plot`` present them.
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
