#!/usr/bin/env bash
# The project's test command (called by `make test` and by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check dlbench tests
.venv/bin/mypy dlbench
exec .venv/bin/python -m pytest "$@"
