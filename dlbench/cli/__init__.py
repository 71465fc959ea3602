"""The ``dlbench`` command: a thin click group; each sub-command lives in its own module.

``main`` is the console-script entry point. It turns every :class:`~dlbench.errors.DlbenchError` into a
one-line message and exit code 2, so bad input never shows a traceback.
"""

from __future__ import annotations

import sys

import click

from dlbench import __version__
from dlbench.errors import DlbenchError
from dlbench.terminal import visible

# Sub-command modules, each exposing ``command`` (a click.Command). Imported lazily so that
# ``dlbench --help`` stays fast and a heavy import in one command never slows the others.
COMMANDS: dict[str, str] = {
    "list": "dlbench.cli.list_cmd",
    "run": "dlbench.cli.run_cmd",
    "env": "dlbench.cli.env_cmd",
    "compare": "dlbench.cli.compare_cmd",
    "history": "dlbench.cli.history_cmd",
    "export": "dlbench.cli.export_cmd",
    "report": "dlbench.cli.report_cmd",
    "verify": "dlbench.cli.verify_cmd",
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


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="dlbench", standalone_mode=False)
    except DlbenchError as exc:
        click.echo(f"dlbench: error: {visible(exc)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("dlbench: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
