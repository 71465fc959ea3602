"""Seeded synthetic input batches in the canonical layout.

Nothing is downloaded: every batch is generated from a seed, so all frameworks see the same numbers
(images NHWC float32 in [0, 1), integer labels, token ids with right padding). Adapters convert the
layout (e.g. to NCHW) themselves.

IMDB-like sequence lengths: real review lengths are roughly log-normal with a median near 174 tokens
(the IMDB train split); we draw ``round(lognormal(log 174, 0.75))`` and clip to ``[5, maxlen]``. With
maxlen 100 about 77% of the sequences are full length and the rest are shorter and right-padded with
id 0, which is what a padded IMDB batch looks like. The transformer uses the same distribution with
maxlen 128: about 66% full length.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from dlbench.workloads.definitions import Workload

IMDB_MEDIAN_TOKENS = 174.0
IMDB_LOG_SIGMA = 0.75
MIN_SEQUENCE = 5


@dataclass(frozen=True)
class Batch:
    """One input batch. ``lengths`` is set for sequence workloads (valid steps per sequence)."""

    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray | None:
        """float32 ``[N, T]``: 1 on the valid (unpadded) steps; what the mean pooling of the LSTM and the
        transformer averages, and the transformer's key-padding mask."""
        if self.lengths is None:
            return None
        steps = np.arange(self.x.shape[1])[None, :]
        return (steps < self.lengths[:, None]).astype(np.float32)


def derive_seed(*parts: object) -> int:
    """A stable 32-bit seed from any labels (Python's ``hash`` is salted per process, so not usable)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def sequence_lengths(rng: np.random.Generator, batch_size: int, maxlen: int) -> np.ndarray:
    raw = rng.lognormal(np.log(IMDB_MEDIAN_TOKENS), IMDB_LOG_SIGMA, size=batch_size)
    return np.clip(np.rint(raw), MIN_SEQUENCE, maxlen).astype(np.int32)


def default_batch(spec: Workload, batch_size: int, rng: np.random.Generator) -> Batch:
    """dlbench's own generator, for every workload whose plugin brings none: labels uniform below
    ``num_classes``, then token ids with IMDB-like lengths (a workload with ``maxlen`` in ``extra``) or uniform
    [0, 1) float32 inputs of ``input_shape``. ``rng`` is seeded by the caller
    (:func:`dlbench.workloads.registry.make_batch`)."""
    labels = rng.integers(0, spec.num_classes, size=batch_size, dtype=np.int32)
    if "maxlen" in spec.extra:
        maxlen, vocab = spec.extra["maxlen"], spec.extra["vocab"]
        lengths = sequence_lengths(rng, batch_size, maxlen)
        tokens = rng.integers(1, vocab, size=(batch_size, maxlen), dtype=np.int32)
        tokens[np.arange(maxlen)[None, :] >= lengths[:, None]] = 0
        return Batch(tokens, labels, lengths)
    x = rng.random((batch_size, *spec.input_shape), dtype=np.float32)
    return Batch(x, labels)
