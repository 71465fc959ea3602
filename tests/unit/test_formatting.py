"""One rule per kind of number: every output that shows a median writes it the same way."""

from __future__ import annotations

import math

import pytest

from dlbench.formatting import (
    MISSING,
    fmt_change,
    fmt_count,
    fmt_mib,
    fmt_ms,
    fmt_ratio_change,
    fmt_speedup,
    one_line,
)


@pytest.mark.parametrize(("value", "text"), [
    (1234.56, "1,234.6"), (545.63, "545.6"), (46.123, "46.12"), (1.4349, "1.43"), (0.08123, "0.0812"),
    (math.nan, MISSING), (math.inf, MISSING), (None, MISSING),
])
def test_milliseconds_keep_about_four_significant_digits(value: float | None, text: str) -> None:
    assert fmt_ms(value) == text


def test_the_unit_is_appended_only_when_asked() -> None:
    assert fmt_ms(12.5, unit=True) == "12.50 ms"
    assert fmt_ms(None, unit=True) == MISSING


def test_changes_speedups_counts_and_bytes() -> None:
    assert fmt_change(0.125) == "+12.5%" and fmt_change(-0.03) == "-3.0%" and fmt_change(math.inf) == "∞"
    assert fmt_ratio_change(1.25) == "+25.0%"
    assert fmt_speedup(3.2) == "3.20x" and fmt_speedup(math.nan) == MISSING
    assert fmt_count(431_080) == "431,080" and fmt_count(None) == MISSING
    assert fmt_mib(3 * 2**20 + 2**19) == "3.5 MiB"


def test_one_line_of_text_and_of_an_exception() -> None:
    assert one_line("a\n  b\tc ") == "a b c"
    assert one_line("x" * 20, limit=10) == "x" * 9 + "…"
    error = ImportError("No module named 'nothing'\nsecond line")
    assert one_line(error) == "ImportError: No module named 'nothing'"
    assert one_line(RuntimeError()) == "RuntimeError"
