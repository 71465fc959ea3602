#!/usr/bin/env bash
# The first-run check for a real GPU machine: `dlbench doctor --device gpu` (see docs/gpu.md).
# Starts each framework on the GPU, runs the smoke suite there and checks its invariants (exit codes, TF32 off,
# device peak present and reset between cases, one GPU used, telemetry), printing PASS/FAIL/WARN lines.
# Exit 0: all passed; 1: a check failed; 2: no GPU here (one line). Extra arguments go to doctor, e.g.
#   scripts/gpu-check.sh --framework torch --output results/gpu-check
# PYTHON selects the interpreter (another environment's, e.g. one per framework: PYTHON=envs/tf/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
exec "$PYTHON" -m dlbench doctor --device gpu "$@"
