"""Every numeric setting is validated once, finite and in range: command-line options (one option type that
refuses NaN, which click.FloatRange lets through) and suite-file measurement settings, by example and by
property-based tests."""

from __future__ import annotations

import math
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dlbench.cases.spec import MAX_BATCH_SIZE, MAX_SEED, MAX_THREADS
from dlbench.cli import cli
from dlbench.cli.options import CommaList, Number
from dlbench.errors import SuiteError
from dlbench.measure.timing import MAX_SECONDS, MeasureConfig
from dlbench.plan.suite import parse_suite

BASE: dict[str, Any] = {"workloads": ["lenet"], "devices": {"cpu": {"batch_sizes": [2]}}}


def run_options(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["run", "--suite", "smoke", "--framework", "fake", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("args", [
    ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "0"), ("--timeout", "-1"),
    ("--max-time", "NaN"), ("--memory-limit", "nan"), ("--memory-limit", "0.5"), ("--min-samples", "2"),
    ("--min-samples", "nan"), ("--seed", "-1"), ("--seed", str(MAX_SEED + 1)), ("--seed", "1.5"),
    ("--batch-size", str(10**20)), ("--batch-size", "1e20"), ("--threads", str(MAX_THREADS + 1)),
    ("--timeout", str(MAX_SECONDS * 2)),
])
def test_bad_numbers_on_the_command_line_exit_two(args: tuple[str, str]) -> None:
    code, output = run_options(*args)
    assert code == 2, output
    assert "Invalid value" in output and args[0] in output


@pytest.mark.parametrize(("measure", "field"), [
    ({"timeout_s": math.nan}, "timeout_s"), ({"min_block_s": math.nan}, "min_block_s"),
    ({"warmup_s": math.inf}, "warmup_s"), ({"min_warmup": 0}, "min_warmup"), ({"min_samples": 1}, "min_samples"),
    ({"target_rel_ci": 0}, "target_rel_ci"), ({"max_time_s": -1.0}, "max_time_s"),
    ({"min_samples": 10, "max_samples": 5}, "max_samples"), ({"min_warmup": True}, "min_warmup"),
])
def test_bad_measure_settings_in_a_suite_are_named(measure: dict[str, Any], field: str) -> None:
    with pytest.raises(SuiteError, match=field):
        parse_suite({**BASE, "measure": measure}, "s.toml")


@pytest.mark.parametrize(("devices", "message"), [
    ({"cpu": {"batch_sizes": [10**20]}}, "above the limit"),
    ({"cpu": {"batch_sizes": [1e20]}}, "not a whole number"),
    ({"cpu": {"threads": [MAX_THREADS + 1], "batch_sizes": [1]}}, "above the limit"),
])
def test_absurd_sizes_in_a_suite_are_refused(devices: dict[str, Any], message: str) -> None:
    with pytest.raises(SuiteError, match=message):
        parse_suite({**BASE, "devices": devices}, "s.toml")


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, "7", 1.0, True])
def test_a_suite_seed_is_a_whole_number_in_range(seed: Any) -> None:
    with pytest.raises(SuiteError, match="seed"):
        parse_suite({**BASE, "seed": seed}, "s.toml")


# ---------------------------------------------------------------- properties
NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**25), 10**25).map(str),
    st.sampled_from(["nan", "NaN", "-nan", "inf", "-Infinity", "1e999", "", " ", "0x10", "1_000", "١"]),
    st.text(max_size=6),
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


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_comma_lists_of_sizes_are_bounded(text: str) -> None:
    try:
        values = CommaList(positive_int=True, maximum=MAX_BATCH_SIZE).convert(text, None, None)
    except click.BadParameter:
        return
    assert values and all(1 <= v <= MAX_BATCH_SIZE for v in values)


SETTING = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**12), 10**12), st.booleans(),
    st.text(max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(MeasureConfig.__struct_fields__), SETTING, max_size=4))
def test_suite_measure_settings_are_valid_or_refused(measure: dict[str, Any]) -> None:
    try:
        suite = parse_suite({**BASE, "measure": measure}, "s.toml")
    except SuiteError as exc:
        assert str(exc).startswith("s.toml: measure") and "\n" not in str(exc)
        return
    config = suite.measure
    for name in MeasureConfig.__struct_fields__:
        value = getattr(config, name)
        assert not isinstance(value, bool) and math.isfinite(value) and value >= 0
    assert config.min_warmup >= 1 and config.timeout_s > 0 and config.max_samples >= config.min_samples >= 3
