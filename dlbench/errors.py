"""Error types that the CLI turns into one-line messages and exit codes.

Kept in their own module so that every layer can raise them without importing click.
"""


class DlbenchError(Exception):
    """A problem the user can fix (bad input, missing GPU, unreadable file): exit code 2."""

    exit_code = 2


class SuiteError(DlbenchError):
    """A suite file or a command-line override that does not describe a valid set of cases."""


class StoreError(DlbenchError):
    """A results directory that cannot be read, written or locked."""
