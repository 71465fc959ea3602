"""The ``dlbench`` command: a thin click group; each sub-command lives in its own module.

``main`` is the console-script entry point. It turns every :class:`~dlbench.errors.DlbenchError` into a
one-line message and exit code 2, so bad input never shows a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

import click

from dlbench import __version__
from dlbench.display.terminal import visible
from dlbench.errors import DlbenchError

# Sub-command modules, each exposing ``command`` (a click.Command). Imported lazily so that
# ``dlbench --help`` stays fast and a heavy import in one command never slows the others.
COMMANDS: dict[str, str] = {
    "list": "dlbench.cli.list_cmd",
    "run": "dlbench.cli.run_cmd",
    "env": "dlbench.cli.env_cmd",
    "compare": "dlbench.cli.compare_cmd",
    "history": "dlbench.cli.history_cmd",
    "export": "dlbench.cli.export_cmd",
    "compact": "dlbench.cli.compact_cmd",
    "report": "dlbench.cli.report_cmd",
    "verify": "dlbench.cli.verify_cmd",
    "doctor": "dlbench.cli.doctor_cmd",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = __import__(COMMANDS[cmd_name], fromlist=["command"])
        return module.command  # type: ignore[no-any-return]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlbench")
def cli() -> None:
    """Benchmark identical deep-learning workloads across frameworks."""


class GuardedStdout:
    """Standard output that remembers a failed write (the reader closed the pipe, the device is full).

    The failure is raised as an :class:`OSError` where it happens and also kept, because a library may
    swallow it (click probes its stream with writes): :func:`main` then reports it as one line, exit 2, and
    points file descriptor 1 at /dev/null so that the interpreter's last flush cannot fail again.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.failure: OSError | None = None

    @classmethod
    def install(cls) -> GuardedStdout | None:
        if isinstance(sys.stdout, cls):
            sys.stdout.failure = None
            return sys.stdout
        if sys.stdout is None:
            return None
        guard = cls(sys.stdout)
        sys.stdout = guard  # type: ignore[assignment]
        return guard

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            self.failure = exc
            raise

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            self.failure = exc
            raise

    def silence(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # not a real file (a test's capture): nothing to silence
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> None:
    if sys.stdout is None:  # file descriptor 1 was closed before Python started: nothing could be printed
        if sys.stderr is not None:
            sys.stderr.write("dlbench: error: cannot write to standard output: it is closed\n")
        sys.exit(2)
    stdout = GuardedStdout.install()
    code: Any = 0
    try:
        code = cli.main(args=argv, prog_name="dlbench", standalone_mode=False)
        sys.stdout.flush()  # a full device shows here, while it can still be reported
    except (OSError, SystemExit):  # click itself exits 1 on a closed pipe
        if stdout is None or stdout.failure is None:
            raise
    except DlbenchError as exc:
        click.echo(f"dlbench: error: {visible(exc)}", err=True)
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("dlbench: aborted", err=True)
        code = 130
    except click.ClickException as exc:
        exc.show()
        code = 2 if isinstance(exc, click.UsageError) else exc.exit_code
    if stdout is not None and stdout.failure is not None:
        stdout.silence()
        reason = stdout.failure.strerror or stdout.failure
        click.echo(f"dlbench: error: cannot write to standard output: {reason}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
