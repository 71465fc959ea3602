"""Parse the relative thresholds users type on the command line ("5%" or "0.05").

A bare number of 1 or more is refused rather than guessed: "5" could mean 5% or 500%, and a CI gate
that silently reads the wrong one either never fires or always does.
"""

from __future__ import annotations

import math

from dlbench.errors import DlbenchError


def parse_threshold(text: str, what: str = "threshold") -> float:
    """``"5%"`` -> 0.05, ``"0.05"`` -> 0.05; anything else raises :class:`DlbenchError` (one line)."""
    raw = text.strip()
    percent = raw.endswith("%")
    number = raw[:-1].strip() if percent else raw
    try:
        value = float(number)
    except ValueError:
        raise DlbenchError(f"bad {what} {text!r}: write a percentage (5%) or a fraction (0.05)") from None
    if not math.isfinite(value) or value < 0:
        raise DlbenchError(f"bad {what} {text!r}: it must be a finite, non-negative amount")
    if percent:
        return value / 100.0
    if value >= 1:
        raise DlbenchError(
            f"ambiguous {what} {text!r}: write {value:g}% for a percentage or a fraction below 1 (0.05 = 5%)"
        )
    return value


def parse_alpha(text: str) -> float:
    """A significance level strictly between 0 and 0.5 (above 0.5 a 'significant' result means nothing)."""
    value = parse_threshold(text, "significance level")
    if not 0 < value <= 0.5:
        raise DlbenchError(f"bad significance level {text!r}: it must lie in (0, 0.5], e.g. 0.01 or 1%")
    return value
