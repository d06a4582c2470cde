import numpy as np
import pytest

from mantra_jax.data.forgeries import FORGERY_KINDS
from mantra_jax.data.forgery_source import ForgerySource, mix_probabilities
from tests.data.conftest import synthetic_bank


def _host_matches(bank, record):
    """Whether some bank patch equals the record's image wherever its mask is 0."""
    outside = record["mask"][..., 0] == 0
    return any(np.array_equal(p[outside], record["image"][outside]) for p in bank.patches)


def test_record_is_a_pure_function_of_seed_and_index(skimage_train_bank):
    a = ForgerySource(skimage_train_bank, "train", seed=3)
    b = ForgerySource(skimage_train_bank, "train", seed=3)
    for i in (0, 1, 2, 3, 777):
        ra, rb = a[i], b[i]
        for key in ("image", "mask", "kind"):
            np.testing.assert_array_equal(ra[key], rb[key])


@pytest.mark.parametrize("kind", FORGERY_KINDS)
def test_each_kind_gives_binary_mask_in_range_and_changes_only_masked_pixels(skimage_train_bank, kind):
    source = ForgerySource(skimage_train_bank, "train", seed=1, mix={kind: 1.0}, area=(0.1, 0.2))
    for i in range(3):
        record = source[i]
        assert record["image"].shape == (256, 256, 3) and record["image"].dtype == np.uint8
        assert record["mask"].shape == (256, 256, 1) and record["mask"].dtype == np.uint8
        assert set(np.unique(record["mask"]).tolist()) <= {0, 1}
        assert 0.1 <= record["mask"].mean() <= 0.2
        assert int(record["kind"]) == FORGERY_KINDS.index(kind)
        assert _host_matches(skimage_train_bank, record)


def test_mix_weights_control_the_kinds():
    bank = synthetic_bank(n=4, size=64)
    source = ForgerySource(bank, "train", seed=0, mix=(1, 0, 3, 0), num_records=200, area=(0.05, 0.1))
    kinds = np.array([int(source[i]["kind"]) for i in range(200)])
    assert set(kinds.tolist()) <= {0, 2}
    assert 0.6 < np.mean(kinds == 2) < 0.9
    np.testing.assert_allclose(mix_probabilities({"removal": 2, "splicing": 2}), [0.5, 0, 0.5, 0])


@pytest.mark.parametrize("mix", [(1, 1, 1), (0, 0, 0, 0), (-1, 1, 1, 1), {"inpaint": 1.0}])
def test_bad_mix_raises(mix):
    with pytest.raises(ValueError):
        mix_probabilities(mix)


def test_default_pool_size():
    assert len(ForgerySource(synthetic_bank(n=5), "train")) == 500
