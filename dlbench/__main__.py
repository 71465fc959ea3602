"""``python -m dlbench`` = the ``dlbench`` command."""

from dlbench.cli import main

main()
