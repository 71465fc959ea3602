"""Numbers on the command line are finite and in range (click.FloatRange lets NaN through): one option type,
checked by example here; the property-based test of the option type is in test_numeric_settings."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dlbench.cli import cli


@pytest.mark.parametrize("args", [
    ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "0"), ("--max-time", "NaN"),
    ("--memory-limit", "nan"), ("--memory-limit", "0.5"), ("--min-samples", "2"), ("--seed", "-1"),
    ("--seed", str(2**32)), ("--seed", "1.5"),
])
def test_bad_numbers_on_the_command_line_exit_two(args: tuple[str, str]) -> None:
    result = CliRunner().invoke(cli, ["run", "--suite", "smoke", "--framework", "fake", *args])
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output and args[0] in result.output

