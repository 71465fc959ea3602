"""Shared click option types: finite numbers in a range, and comma-separated lists, each validated with a
one-line error (exit 2). ``click.FloatRange`` is not enough: NaN compares false with every bound, so it
passes any range check (a ``--timeout nan`` would switch every timeout off)."""

from __future__ import annotations

import math
from typing import Any

import click


class CommaList(click.ParamType):
    """``--threads 1,2`` or ``--threads 1 --threads 2``; items are strings or positive whole numbers."""

    def __init__(self, positive_int: bool = False, label: str = "value", maximum: int | None = None) -> None:
        self.positive_int = positive_int
        self.label = label
        self.maximum = maximum
        self.name = "INT[,INT...]" if positive_int else "NAME[,NAME...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[Any, ...]:
        if isinstance(value, tuple):
            return value
        items = [item.strip() for item in str(value).split(",") if item.strip()]
        if not items:
            self.fail(f"empty {self.label} list", param, ctx)
        if not self.positive_int:
            return tuple(items)
        numbers = []
        for item in items:
            try:
                number = int(item)
            except ValueError:
                self.fail(f"{self.label} {item!r} is not a whole number", param, ctx)
            if number < 1:
                self.fail(f"{self.label} must be at least 1, got {number}", param, ctx)
            if self.maximum is not None and number > self.maximum:
                self.fail(f"{self.label} must be at most {self.maximum}, got {number}", param, ctx)
            numbers.append(number)
        return tuple(numbers)


class Number(click.ParamType):
    """A finite number (float, or whole with ``integer``) from ``minimum`` to ``maximum``; NaN and infinity
    are refused. ``above`` makes the lower bound exclusive (a timeout must be more than 0)."""

    def __init__(self, minimum: float, maximum: float, *, above: bool = False, integer: bool = False) -> None:
        self.minimum, self.maximum, self.above, self.integer = minimum, maximum, above, integer
        self.name = "INTEGER" if integer else "NUMBER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | int:
        if isinstance(value, int | float) and not isinstance(value, bool):
            number: float | int = value
        else:
            text = str(value).strip()
            try:
                number = int(text) if self.integer else float(text)
            except ValueError:
                kind = "a whole number" if self.integer else "a number"
                self.fail(f"{value!r} is not {kind}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        low_ok = number > self.minimum if self.above else number >= self.minimum
        if not low_ok or number > self.maximum:
            low = f"more than {self.minimum:g}" if self.above else f"at least {self.minimum:g}"
            self.fail(f"{number:g} is out of range: must be {low} and at most {self.maximum:g}", param, ctx)
        return number


def flatten(values: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    """Merge repeated comma-list options into one tuple, keeping order and dropping repeats."""
    return tuple(dict.fromkeys(item for group in values for item in group))
