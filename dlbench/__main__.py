"""``python -m dlbench`` and the ``dlbench`` console script: the command line, interruptible from its first
instant.

The interpreter's own SIGINT handler turns a Ctrl-C into a ``KeyboardInterrupt`` wherever it lands, and
while the command line's modules are being imported that is a traceback. So, before anything heavy is
imported, a Ctrl-C ends the process quietly with 130 (nothing has been started or written yet); once the
command runs, the usual handler is back and each command stops in its own way (``run`` saves what it
measured).
"""

import _signal  # the C module itself, built in: ``signal`` would first build its enums, long enough for a Ctrl-C
import os  # already loaded by the interpreter's start-up: no time passes here


def _interrupted_while_starting(signum: int, frame: object) -> None:
    os._exit(130)


_signal.signal(_signal.SIGINT, _interrupted_while_starting)

from dlbench.cli import main as _main  # noqa: E402 - imported after the handler, on purpose


def run() -> None:
    """The entry point: the usual Ctrl-C behaviour back, then the command."""
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    _main()


if __name__ == "__main__":
    run()
