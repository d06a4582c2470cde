import numpy as np
import pytest

from mantra_jax.data import forgeries
from mantra_jax.data.forgeries import composite, copy_move, enhance, feather_alpha, remove, splice
from mantra_jax.data.masks import random_mask


def _patch(seed=0, size=96):
    yy, xx = np.mgrid[0:size, 0:size]
    rng = np.random.default_rng(seed)
    base = np.stack([xx * 2.5, yy * 2.5, 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)], axis=-1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def _mask(seed, size=96, area=(0.05, 0.3)):
    return random_mask(size, size, np.random.default_rng(seed), area=area)


def test_feather_alpha_is_soft_only_inside_the_mask():
    mask = np.zeros((40, 40), np.uint8)
    mask[5:35, 5:35] = 1
    alpha = feather_alpha(mask, 6)
    assert alpha.dtype == np.float32
    assert np.all(alpha[mask == 0] == 0) and np.all(alpha[mask == 1] > 0)
    assert alpha[20, 20] == 1.0 and 0 < alpha[5, 20] < 0.5
    np.testing.assert_array_equal(feather_alpha(mask, 1), mask.astype(np.float32))


def test_composite_matches_float64_reference():
    rng = np.random.default_rng(0)
    base, content = (rng.integers(0, 256, (8, 9, 3), dtype=np.uint8) for _ in range(2))
    alpha = rng.random((8, 9)).astype(np.float32)
    alpha[0] = 0
    ref = np.rint(base * (1 - alpha[..., None].astype(np.float64)) + content * alpha[..., None].astype(np.float64))
    out = composite(base, content, alpha)
    assert np.abs(out.astype(np.float64) - ref).max() <= 1
    np.testing.assert_array_equal(out[0], base[0])


@pytest.mark.parametrize("seed", range(8))
def test_splicing_changes_only_masked_pixels(seed):
    host, donor, mask = _patch(seed), _patch(100 + seed), _mask(seed)
    out = splice(host, donor, mask, np.random.default_rng(seed), feather=6)
    assert out.dtype == np.uint8 and out.shape == host.shape
    np.testing.assert_array_equal(out[mask == 0], host[mask == 0])
    assert np.mean(out[mask == 1] != host[mask == 1]) > 0.5


@pytest.mark.parametrize("seed", range(8))
def test_copy_move_changes_only_masked_pixels(seed):
    patch, mask = _patch(seed), _mask(seed)
    out = copy_move(patch, mask, np.random.default_rng(seed))
    np.testing.assert_array_equal(out[mask == 0], patch[mask == 0])
    assert np.mean(out[mask == 1] != patch[mask == 1]) > 0.3


def test_copy_move_plain_shift_copies_pixels_exactly():
    found = 0
    for seed in range(40):
        mask = _mask(seed, area=(0.03, 0.08))
        matrix, inside = forgeries._copy_move_map(mask, np.random.default_rng(seed), (0.8, 1.25), 30.0)
        if not (inside and np.array_equal(matrix[:, :2], np.eye(2))):
            continue
        found += 1
        dx, dy = matrix[:, 2]
        assert dx == int(dx) and dy == int(dy) and np.hypot(dx, dy) >= 4
        patch = _patch(seed)
        out = copy_move(patch, mask, np.random.default_rng(seed), feather=0)
        ys, xs = np.nonzero(mask)
        np.testing.assert_array_equal(out[ys, xs], patch[ys + int(dy), xs + int(dx)])
    assert found >= 3


@pytest.mark.parametrize("seed", range(4))
def test_removal_inpaints_only_the_mask(seed):
    patch, mask = _patch(seed), _mask(seed)
    out = remove(patch, mask, np.random.default_rng(seed))
    np.testing.assert_array_equal(out[mask == 0], patch[mask == 0])
    assert np.mean(out[mask == 1] != patch[mask == 1]) > 0.5


def test_enhancement_follows_the_paper_formula():
    patch, mask = _patch(), _mask(1)
    out = enhance(patch, mask, lambda image, rng: 255 - image, np.random.default_rng(0))
    m = mask[..., None].astype(np.int64)
    np.testing.assert_array_equal(out, patch * (1 - m) + (255 - patch.astype(np.int64)) * m)


def test_bad_inputs_raise():
    patch, mask = _patch(), _mask(0)
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        remove(patch, mask * 255, np.random.default_rng(0))
    with pytest.raises(ValueError, match="mask is empty"):
        splice(patch, patch, np.zeros_like(mask), np.random.default_rng(0))
    with pytest.raises(ValueError, match="image must be"):
        copy_move(patch.astype(np.float32), mask, np.random.default_rng(0))
    with pytest.raises(ValueError, match="manipulation returned"):
        enhance(patch, mask, lambda image, rng: image[:10], np.random.default_rng(0))
