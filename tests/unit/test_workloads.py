"""The canonical workloads match the numbers printed in docs/workloads.md."""

import numpy as np
import pytest

from dlbench.errors import SuiteError
from dlbench.workloads import get_workload, initial_weights, make_batch
from dlbench.workloads.registry import pass_flops
from dlbench.workloads.weights import glorot_limit

# (workload, phase) -> (trainable params, forward MACs per sample), copied from workloads.md
DOCUMENTED = {
    ("lenet", ""): (431_080, 2_293_000),
    ("alexnet", ""): (62_378_344, 1_135_256_096),
    ("autoencoder", "pretrain1"): (314_784, 627_200),
    ("autoencoder", "pretrain2"): (80_600, 473_600),
    ("autoencoder", "pretrain3"): (20_300, 433_600),
    ("autoencoder", "finetune"): (415_310, 414_600),
    ("lstm", ""): (1_411_842, None),
    ("transformer", ""): (5_752_834, 436_208_128),
}


@pytest.mark.parametrize(("workload", "phase"), list(DOCUMENTED))
def test_params_and_macs_match_workloads_md(workload: str, phase: str) -> None:
    params, macs = DOCUMENTED[(workload, phase)]
    spec = get_workload(workload)
    assert spec.trainable_params(phase) == params
    if macs is not None:
        assert spec.macs(phase) == macs


def test_lstm_macs_are_about_13_1_million() -> None:
    # 100 steps x 4 gates x (128x128 + 128x128), plus the 128 -> 2 classifier
    assert get_workload("lstm").macs() == 100 * 4 * (128 * 128 + 128 * 128) + 256
    assert round(get_workload("lstm").macs() / 1e6, 1) == 13.1


def test_per_layer_counts_of_lenet_and_alexnet() -> None:
    lenet = get_workload("lenet")
    assert lenet.param("conv2.kernel").size + lenet.param("conv2.bias").size == 25_050
    alexnet = get_workload("alexnet")
    assert alexnet.param("fc6.kernel").shape == (9216, 4096)
    assert alexnet.param("conv1.kernel").shape == (11, 11, 3, 96)


def test_unknown_workload_and_phase_are_user_errors() -> None:
    with pytest.raises(SuiteError, match="unknown workload"):
        get_workload("vgg16")
    with pytest.raises(SuiteError, match="no phase"):
        get_workload("autoencoder").phase("pretrain4")


def test_weights_are_seeded_canonical_and_glorot() -> None:
    a, b = initial_weights("lenet", seed=0), initial_weights("lenet", seed=0)
    c = initial_weights("lenet", seed=1)
    spec = get_workload("lenet")
    assert set(a) == {p.name for p in spec.params}
    for p in spec.params:
        assert a[p.name].shape == p.shape and a[p.name].dtype == np.float32
        np.testing.assert_array_equal(a[p.name], b[p.name])
    assert not np.array_equal(a["conv1.kernel"], c["conv1.kernel"])
    assert not a["conv1.bias"].any()
    limit = glorot_limit((5, 5, 1, 20))
    assert limit == pytest.approx(np.sqrt(6 / (25 + 500)))
    assert np.abs(a["conv1.kernel"]).max() <= limit
    assert np.abs(a["conv1.kernel"]).max() > 0.9 * limit


def test_batches_are_seeded_and_shaped() -> None:
    x = make_batch("lenet", 4)
    assert x.x.shape == (4, 28, 28, 1) and x.x.dtype == np.float32 and x.y.shape == (4,)
    np.testing.assert_array_equal(x.x, make_batch("lenet", 4).x)
    assert make_batch("alexnet", 1).x.shape == (1, 227, 227, 3)
    assert make_batch("autoencoder", 3).x.shape == (3, 784)
    assert 0 <= x.x.min() and x.x.max() < 1


def test_lstm_batches_are_imdb_like_and_right_padded() -> None:
    batch = make_batch("lstm", 2000)
    assert batch.x.shape == (2000, 100)
    full = (batch.lengths == 100).mean()
    assert 0.65 < full < 0.9  # most reviews are longer than 100 tokens
    assert batch.lengths.min() >= 5
    for row, length in zip(batch.x[:50], batch.lengths[:50], strict=True):
        assert (row[:length] > 0).all() and (row[length:] == 0).all()
    np.testing.assert_array_equal(batch.mask.sum(axis=1), batch.lengths)


def test_transformer_layer_table_matches_workloads_md() -> None:
    """The per-row numbers of the transformer's table, not only the totals."""
    spec = get_workload("transformer")

    def size(prefix: str) -> int:
        return sum(p.size for p in spec.params if p.name.startswith(prefix))

    assert spec.param("embedding.table").shape == (10_000, 256)
    assert spec.param("position.table").shape == (128, 256)
    assert size("layer0.attn.") == 263_168
    assert size("layer0.ff") == 525_568
    assert size("layer0.ln1.") == size("layer0.ln2.") == 512
    assert size("layer0.") == 789_760
    assert sum(size(f"layer{i}.") for i in range(4)) == 3_159_040
    assert size("final_ln.") == 512 and size("classifier.") == 514
    assert spec.param("layer3.attn.query.kernel").shape == (256, 256)
    # per layer: QKV 25,165,824 + scores 4,194,304 + weighted values 4,194,304 + output 8,388,608 + FF 67,108,864
    assert (spec.macs() - 512) // 4 == 109_051_904
    assert spec.paper_batch_size == 32


def test_transformer_weights_initialise_layer_norms_to_identity() -> None:
    weights = initial_weights("transformer")
    assert (weights["layer0.ln1.gamma"] == 1).all() and not weights["layer0.ln1.beta"].any()
    assert (weights["final_ln.gamma"] == 1).all()
    assert not weights["layer2.attn.value.bias"].any()
    limit = glorot_limit((256, 1024))
    assert limit * 0.9 < np.abs(weights["layer1.ff1.kernel"]).max() <= limit


def test_transformer_batches_share_the_lstm_length_distribution_at_length_128() -> None:
    batch = make_batch("transformer", 4000)
    assert batch.x.shape == (4000, 128) and batch.x.dtype == np.int32
    full = (batch.lengths == 128).mean()
    assert 0.6 < full < 0.72  # lognormal(log 174, 0.75) >= 127.5: 66%
    assert 5 <= batch.lengths.min() and batch.lengths.max() == 128
    for row, length in zip(batch.x[:50], batch.lengths[:50], strict=True):
        assert (row[:length] > 0).all() and (row[length:] == 0).all()
    assert batch.x.max() < 10_000


def test_gradient_flops_are_three_times_forward() -> None:
    assert pass_flops("lenet", "", "forward", 64) == 2 * 2_293_000 * 64
    assert pass_flops("lenet", "", "gradient", 64) == 3 * pass_flops("lenet", "", "forward", 64)
