"""The NumPy side of the adapter tests: which cases to run, on which weights and batches, and what the
float64 reference (:mod:`dlbench.verify.reference`) says they compute.

Why a shared module: the three adapter test files used to carry their own copies of the networks in NumPy.
They now all compare against the one tested reference, and the inputs that make those comparisons sharp
(non-zero biases, sequences of very different lengths) are built here once.

Pure NumPy: the TensorFlow test file's child process does not import it (``tests`` is not on its path).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from dlbench.frameworks.base import Evaluation
from dlbench.verify.reference import reference_evaluate
from dlbench.workloads import Batch, get_workload, initial_weights, make_batch, workload_names

# Every (workload, phase) of the canonical definitions, in their order.
ALL_CASES: list[tuple[str, str]] = [(w, p) for w in workload_names() for p in get_workload(w).phase_names]


@functools.cache
def _with_random_biases(workload: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = dict(initial_weights(workload))  # kernels: seeded Glorot-uniform, already random
    for name, value in weights.items():
        if name.endswith(".bias"):
            weights[name] = rng.uniform(-0.5, 0.5, size=value.shape).astype(np.float32)
    return weights


def with_random_biases(workload: str, seed: int = 1) -> dict[str, np.ndarray]:
    """Canonical weights with non-zero biases: the canonical zero biases would hide a missing or misplaced
    bias. A fresh dict (callers may replace entries) of shared arrays (callers must not mutate them)."""
    return dict(_with_random_biases(workload, seed))


def masked_lstm_batch(lengths: Sequence[int], labels: Sequence[int], seed: int) -> Batch:
    """LSTM sequences of the given (very different) lengths, padded with token 0, so that the masked mean
    over the valid steps really matters: a mean over all 100 steps would change the short ones most."""
    extra = get_workload("lstm").extra
    steps, vocab = extra["maxlen"], extra["vocab"]
    rng = np.random.default_rng(seed)
    valid = np.asarray(lengths, dtype=np.int32)
    tokens = rng.integers(1, vocab, size=(len(valid), steps), dtype=np.int32)
    tokens[np.arange(steps)[None, :] >= valid[:, None]] = 0
    return Batch(tokens, np.asarray(labels, dtype=np.int32), valid)


def reference(
    workload: str, phase: str, batch: Batch, weights: Mapping[str, np.ndarray], gradients: bool = True
) -> Evaluation:
    """The float64 reference's output, loss and (unless ``gradients`` is False) canonical-layout gradients.

    Not calibrated: these tests judge with fixed tolerances that already cover float32 rounding on their
    inputs, so the float32 shadow run and near-tie analysis would only cost time."""
    return reference_evaluate(workload, phase, batch, weights, gradients=gradients, calibrate=False).evaluation


@functools.cache
def near_tie_allowance(workload: str, batch_size: int) -> dict[str, np.ndarray]:
    """The reference's elementwise float32 allowance (noise level plus near-tie envelope, see
    :mod:`dlbench.verify.ties`) of ``workload`` on :func:`with_random_biases` weights and the seeded batch of
    ``batch_size``. Two float32 implementations may each take a near-tied ReLU or max-pool decision either way
    (which ones depends on the CPU's summation order), so two of them may differ by twice this."""
    batch = make_batch(workload, batch_size)
    return reference_evaluate(workload, "", batch, with_random_biases(workload), calibrate=True).allowance


def beyond_ties(a: np.ndarray, b: np.ndarray, allowance: np.ndarray | None) -> np.ndarray:
    """``|a - b|`` less twice the allowance of both sides' near-ties (zero where they explain it)."""
    diff = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return diff if allowance is None else np.maximum(diff - 2 * allowance, 0.0)
