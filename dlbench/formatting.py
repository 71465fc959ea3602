"""How dlbench writes numbers and messages for people: one rule for each kind, used by every output.

The terminal summary, ``compare``, ``history``, ``verify`` and the HTML report all show the same kinds of
values (milliseconds, relative changes, speed-ups, byte counts, error messages); written by one function
each, the same median reads the same everywhere. Machine-readable outputs (CSV, JSON, exports) keep full
numbers and never pass through here.
"""

from __future__ import annotations

import math

MISSING = "—"  # a value that was not measured or cannot be computed
MiB = 2**20
MESSAGE_LIMIT = 500  # characters of an error message kept in a result row or a table cell


def fmt_ms(value: float | None, unit: bool = False) -> str:
    """Milliseconds to about four significant digits, as the study prints them: ``1,234.5``, ``545.6``,
    ``46.12``, ``1.43``, ``0.0812``; with ``unit`` followed by `` ms``."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value >= 100:
        text = f"{value:,.1f}"
    elif value >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} ms" if unit else text


def fmt_change(relative: float) -> str:
    """A relative change as a signed percentage (``+12.5%``, ``-3.0%``); ``∞`` from nothing."""
    return "∞" if math.isinf(relative) else f"{relative * 100:+.1f}%"


def fmt_ratio_change(ratio: float) -> str:
    """A ratio new/old as the relative change it means (1.25 -> ``+25.0%``)."""
    return fmt_change(ratio - 1.0)


def fmt_speedup(value: float) -> str:
    """A speed-up factor: ``3.20x``."""
    return f"{value:.2f}x" if math.isfinite(value) else MISSING


def fmt_num(value: float | None, digits: int = 1) -> str:
    """A plain quantity with thousands separators and ``digits`` decimals (``12,345.6``)."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:,.{digits}f}"


def fmt_count(value: float | None) -> str:
    """A whole count with thousands separators (``431,080``)."""
    return fmt_num(value, 0)


def fmt_mib(value: float) -> str:
    """Bytes in MiB with one decimal (``12.3 MiB``)."""
    return f"{value / MiB:.1f} MiB"


def one_line(message: str | BaseException, limit: int = MESSAGE_LIMIT) -> str:
    """A message fit for one line of a table or a log: an exception as ``Type: first line of its message``,
    any text with its whitespace (newlines included) collapsed; cut at ``limit`` characters with ``…``."""
    if isinstance(message, BaseException):
        lines = str(message).strip().splitlines()
        message = f"{type(message).__name__}: {lines[0]}" if lines else type(message).__name__
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
