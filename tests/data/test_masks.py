import cv2
import numpy as np
import pytest

from mantra_jax.data.masks import SHAPES, random_mask


@pytest.mark.parametrize("area", [(0.05, 0.35), (0.01, 0.03), (0.4, 0.6), (0.8, 0.9)])
def test_masks_are_binary_with_area_in_range(area):
    for seed in range(40):
        mask = random_mask(64, 96, np.random.default_rng(seed), area=area)
        assert mask.dtype == np.uint8 and mask.shape == (64, 96)
        assert set(np.unique(mask).tolist()) <= {0, 1}
        assert area[0] <= mask.mean() <= area[1]


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_alone_reaches_the_range(shape):
    for seed in range(10):
        mask = random_mask(128, 128, np.random.default_rng(seed), area=(0.1, 0.2), shapes=(shape,))
        assert 0.1 <= mask.mean() <= 0.2


def test_masks_are_deterministic_per_generator_and_varied():
    a = random_mask(64, 64, np.random.default_rng(5))
    np.testing.assert_array_equal(a, random_mask(64, 64, np.random.default_rng(5)))
    assert not np.array_equal(a, random_mask(64, 64, np.random.default_rng(6)))


def test_masks_are_structured_not_speckle():
    # A structured mask is mostly interior: few forged pixels have an unforged 4-neighbour.
    mask = random_mask(256, 256, np.random.default_rng(0), area=(0.2, 0.3))
    padded = np.pad(mask, 1)
    interior = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]) & mask
    assert interior.sum() > 0.8 * mask.sum()


@pytest.mark.parametrize("area", [(0.0, 0.5), (0.5, 0.4), (0.2, 1.0), (0.5,)])
def test_bad_area_raises(area):
    with pytest.raises(ValueError, match="area"):
        random_mask(32, 32, np.random.default_rng(0), area=area)


def test_unknown_shape_raises():
    with pytest.raises(ValueError, match="shapes"):
        random_mask(32, 32, np.random.default_rng(0), shapes=("circle",))


def test_masks_have_no_tiny_specks():
    for seed in range(30):
        mask = random_mask(256, 256, np.random.default_rng(seed))
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        assert all(stats[k, cv2.CC_STAT_AREA] >= 16 for k in range(1, n))
