#!/usr/bin/env bash
# The first-run check for a real GPU machine (see docs/gpu.md):
# 1. `dlbench doctor --device gpu`: starts each framework on the GPU, runs the smoke suite there and checks its
#    invariants (exit codes, TF32 off, device peak present and reset between cases, one GPU used, telemetry),
#    printing PASS/FAIL/WARN lines;
# 2. when the doctor passed, the convolution-algorithm comparison on the GPU (docs/convolution.md): every
#    algorithm proved equal to native by `dlbench verify --conv all` on LeNet and AlexNet, then the `conv` suite
#    with every variant (cuDNN autotuning on and off, deterministic algorithms) into $GPU_CHECK_OUT
#    (default results/gpu-check-conv-<date>), with its HTML report.
# Exit 0: all passed; 1: a check, a verification or a case failed; 2: no GPU here (one line). Extra arguments go
# to doctor, e.g. scripts/gpu-check.sh --framework torch --output results/gpu-check
# PYTHON selects the interpreter (another environment's, e.g. one per framework: PYTHON=envs/tf/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
OUT="${GPU_CHECK_OUT:-results/gpu-check-conv-$(date +%Y%m%d-%H%M%S)}"
"$PYTHON" -m dlbench doctor --device gpu "$@"
"$PYTHON" -m dlbench verify --device gpu --conv all --workload lenet,alexnet
exec "$PYTHON" -m dlbench run --suite conv --device gpu --variant all --output "$OUT" --report
