"""The example ResNet plugin: registered through its entry point, its declared counts, and its NumPy reference
(float64, manual backpropagation) against finite differences. NumPy only; skipped unless the plugin is
installed (``pip install --no-deps -e examples/resnet_plugin``, which ``make setup`` does). The frameworks are
checked against this reference by ``dlbench verify`` in ``tests/integration/test_resnet_plugin.py``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dlbench_resnet")

from dlbench.verify.layers import MacCounter  # noqa: E402
from dlbench.verify.reference import reference_evaluate  # noqa: E402
from dlbench.workloads import get_plugin, get_workload, initial_weights, make_batch, workload_names  # noqa: E402
from dlbench_resnet.reference import reference  # noqa: E402
from dlbench_resnet.workload import DECLARED_PARAMS  # noqa: E402


def test_registered_after_the_builtins_with_its_declared_counts() -> None:
    assert "resnet" in workload_names()
    workload = get_workload("resnet")
    assert workload.total_params() == DECLARED_PARAMS == get_plugin("resnet").declared_params
    phase = workload.phase("")
    assert workload.trainable_params("") == 19_994
    assert all(name.endswith((".mean", ".var")) for name in phase.frozen) and len(phase.frozen) == 12
    assert set(get_plugin("resnet").builders) == {"torch", "tensorflow", "jax"}


def test_reference_counts_the_declared_macs() -> None:
    ref = reference_evaluate("resnet", "", make_batch("resnet", 2), initial_weights("resnet"), calibrate=False)
    assert ref.macs_per_sample == get_workload("resnet").macs("")
    assert set(ref.evaluation.gradients) == set(get_workload("resnet").phase("").trainable)


def _loss(params: dict[str, np.ndarray], batch: object) -> float:
    return reference(params, "", batch, MacCounter(), False, False)[1]  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["stem.conv.kernel", "stem.bn.gamma", "block1.bn2.beta", "block2.proj.kernel",
                                  "block2.conv1.kernel", "fc.kernel", "fc.bias"])
def test_reference_gradients_match_finite_differences(name: str) -> None:
    """Central differences in float64 at a few seeded coordinates of each checked tensor: the manual backward
    of the residual blocks and of training-mode batch norm (its two correction terms) are the risky parts."""
    batch = make_batch("resnet", 3, seed=1)
    batch = type(batch)(batch.x.astype(np.float64), batch.y)
    params = {k: v.astype(np.float64) for k, v in initial_weights("resnet", seed=2).items()}
    _, _, grads, _ = reference(params, "", batch, MacCounter(), True, False)
    rng = np.random.default_rng(0)
    flat = params[name].reshape(-1)
    step = 1e-6
    for index in rng.choice(flat.size, size=min(4, flat.size), replace=False):
        saved = flat[index]
        flat[index] = saved + step
        up = _loss(params, batch)
        flat[index] = saved - step
        down = _loss(params, batch)
        flat[index] = saved
        numeric = (up - down) / (2 * step)
        analytic = grads[name].reshape(-1)[index]
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8), (name, index)


def test_forward_uses_running_statistics_and_the_gradient_pass_the_batch() -> None:
    """The output (forward pass) changes with the running statistics; the loss (gradient pass) does not."""
    batch = make_batch("resnet", 2)
    weights = {k: v.astype(np.float64) for k, v in initial_weights("resnet").items()}
    shifted = {**weights, "stem.bn.mean": weights["stem.bn.mean"] + 0.5}
    out_a, loss_a, _, _ = reference(weights, "", batch, MacCounter(), False, False)
    out_b, loss_b, _, _ = reference(shifted, "", batch, MacCounter(), False, False)
    assert not np.allclose(out_a, out_b)
    assert loss_a == loss_b
