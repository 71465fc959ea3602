#!/usr/bin/env bash
# The plugins' tests (called by `make test-plugins` and by .ci/run, after the main suite ran without them).
# Installs each plugin of plugins/ into .venv as a third party would (pip install -e, pinned by
# constraints.txt), lints and type-checks it, runs its tests (tests/plugins), then uninstalls the plugin again:
# the environment that `make run` and `make test` see stays the one without plugins (what a plugin's framework
# left installed registers no adapter).
set -euo pipefail
cd "$(dirname "$0")/.."
pip=(.venv/bin/python -m pip --disable-pip-version-check)
"${pip[@]}" install --quiet -c constraints.txt -e plugins/dlbench-pytensor
trap '"${pip[@]}" uninstall --quiet -y dlbench-pytensor' EXIT
.venv/bin/ruff check plugins tests/plugins
.venv/bin/mypy plugins/dlbench-pytensor/dlbench_pytensor
.venv/bin/python -m pytest tests/plugins "$@"
