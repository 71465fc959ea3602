"""Shared click option types: comma-separated lists that validate each item with a one-line error."""

from __future__ import annotations

from typing import Any

import click


class CommaList(click.ParamType):
    """``--threads 1,2`` or ``--threads 1 --threads 2``; items are strings or positive whole numbers."""

    def __init__(self, positive_int: bool = False, label: str = "value") -> None:
        self.positive_int = positive_int
        self.label = label
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
            numbers.append(number)
        return tuple(numbers)


def flatten(values: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    """Merge repeated comma-list options into one tuple, keeping order and dropping repeats."""
    return tuple(dict.fromkeys(item for group in values for item in group))
