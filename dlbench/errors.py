"""Error types that the CLI turns into one-line messages and exit codes.

Kept in their own module so that every layer can raise them without importing click.
"""

import msgspec


class DlbenchError(Exception):
    """A problem the user can fix (bad input, missing GPU, unreadable file): exit code 2."""

    exit_code = 2


class SuiteError(DlbenchError):
    """A suite file or a command-line override that does not describe a valid set of cases."""


class StoreError(DlbenchError):
    """A results directory that cannot be read, written or locked."""


def validation_message(exc: msgspec.ValidationError) -> str:
    """msgspec's ``Expected `int` >= 1 - at `$.measure.min_warmup``` as
    ``measure.min_warmup: expected `int` >= 1``: the field first, as every one-line error names it."""
    text = str(exc)
    message, sep, where = text.rpartition(" - at `")
    if not sep:
        return text
    path = where.rstrip("`").removeprefix("$").removeprefix(".")
    return f"{path}: {message[:1].lower()}{message[1:]}" if path else message
