"""``dlbench verify`` catches and names transformers that compute another function (framework-free).

Three wrong models that a port of the transformer plausibly ships, each injected into an in-process
implementation built on the NumPy reference (evaluated in float32, like a framework): attention scores not
scaled by 1/sqrt(head_dim), the padding mask applied to the queries instead of the keys, and the
tanh-approximated GELU (``jax.nn.gelu``'s default). The wrong maths is swapped in only while that
implementation evaluates; the reference and the correct implementation compute the canonical function.
Verify must fail and name exactly the three wrong implementations. The same bugs in a real framework are
tested in tests/integration/test_verify_transformer.py.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from unittest.mock import patch

import numpy as np
import pytest

import dlbench.verify.layers as layers
import dlbench.verify.reference as reference
from dlbench.verify.collect import OK, ImplResult, Target, evaluate_adapter
from dlbench.verify.judge import FAIL, verify_all
from dlbench.workloads import make_batch
from dlbench.workloads.definitions import MASK_VALUE
from tests.verify_fixtures import NumpyAdapter

TARGET = Target("transformer")


def tanh_gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def query_padding_bias(mask: np.ndarray) -> np.ndarray:
    return ((1.0 - mask) * MASK_VALUE)[:, None, :, None]


WRONG: dict[str, Callable[[], AbstractContextManager[None]]] = {
    "noscale": lambda: patch.object(layers, "attention_scale", lambda head_dim: 1.0),
    "querymask": lambda: patch.object(reference, "key_padding_bias", query_padding_bias),
    "tanhgelu": lambda: patch.object(reference, "gelu", tanh_gelu),
}


@pytest.fixture(scope="module")
def results() -> list[ImplResult]:
    found = evaluate_adapter(NumpyAdapter("numpy", variants=("plain",)), [TARGET], ("plain",), batch_size=2)
    for name, wrong in WRONG.items():
        with wrong():
            found += evaluate_adapter(NumpyAdapter(name, variants=("plain",)), [TARGET], ("plain",), batch_size=2)
    assert all(r.status == OK for r in found), [r.error for r in found]
    return found


def test_the_verification_batch_has_padding() -> None:
    """Without a padded sequence the mask is not exercised and a query mask would pass unseen."""
    assert (make_batch("transformer", 2, 0).lengths < 128).any()


def test_each_wrong_transformer_fails_and_is_named(results: list[ImplResult]) -> None:
    report = verify_all([TARGET], results, batch_size=2)
    assert report.verdict == FAIL and report.exit_code == 1
    problems = report.targets[0].problems
    blamed = {p.split("/")[0] for p in problems if "disagrees with the NumPy reference" in p}
    assert blamed == set(WRONG), problems
    assert not any(p.startswith("numpy/") for p in problems), problems


def test_the_correct_implementation_alone_passes(results: list[ImplResult]) -> None:
    report = verify_all([TARGET], [r for r in results if r.framework == "numpy"], batch_size=2)
    assert report.targets[0].verdict == "pass", report.targets[0].problems
