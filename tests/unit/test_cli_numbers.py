"""Numbers on the command line are finite and in range (click.FloatRange lets NaN through): one option type,
checked by example and by a property-based test."""

from __future__ import annotations

import math

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dlbench.cli import cli
from dlbench.cli.options import Number


@pytest.mark.parametrize("args", [
    ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "0"), ("--max-time", "NaN"),
    ("--memory-limit", "nan"), ("--memory-limit", "0.5"), ("--min-samples", "2"), ("--seed", "-1"),
    ("--seed", str(2**32)), ("--seed", "1.5"),
])
def test_bad_numbers_on_the_command_line_exit_two(args: tuple[str, str]) -> None:
    result = CliRunner().invoke(cli, ["run", "--suite", "smoke", "--framework", "fake", *args])
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output and args[0] in result.output


NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-(10**25), 10**25).map(str),
    st.sampled_from(["nan", "NaN", "-nan", "inf", "-Infinity", "1e999", "", " ", "0x10"]), st.text(max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(text=NUMBER_TEXT, minimum=st.sampled_from([0.0, 1.0, 3.0]), above=st.booleans(), integer=st.booleans())
def test_number_accepts_only_finite_values_in_range(text: str, minimum: float, above: bool, integer: bool) -> None:
    kind = Number(minimum, 1e6, above=above, integer=integer)
    try:
        value = kind.convert(text, None, None)
    except click.BadParameter:
        return
    assert math.isfinite(value) and value <= 1e6
    assert value > minimum if above else value >= minimum
    assert isinstance(value, int) if integer else isinstance(value, float)
