"""Contrast family: AutoContrast and unsharp masking against float64 references, CLAHE properties."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mantra_jax.manipulations import contrast


def _autocontrast_reference(image: np.ndarray, cutoff_percent: float) -> np.ndarray:
    out = np.empty(image.shape, dtype=np.uint8)
    for ch in range(3):
        values = np.sort(image[..., ch].ravel())
        cut = int(np.floor(values.size * cutoff_percent / 100.0))
        lo, hi = int(values[cut]), int(values[values.size - 1 - cut])
        mapped = (image[..., ch].astype(np.float64) - lo) * 255.0 / (hi - lo)
        out[..., ch] = np.clip(np.rint(mapped), 0, 255)
    return out


@pytest.mark.parametrize("level", contrast.AUTOCONTRAST_LEVELS)
def test_auto_contrast_matches_sorted_percentile_reference(cat, level):
    cutoff = contrast.autocontrast_cutoff(level)
    np.testing.assert_array_equal(contrast.auto_contrast(cat, cutoff), _autocontrast_reference(cat, cutoff))


def test_auto_contrast_levels_clip_half_a_percent_to_four_percent():
    assert [contrast.autocontrast_cutoff(c) for c in (0, 7)] == [0.5, 4.0]


def test_auto_contrast_stretches_a_dull_image_to_full_range(cat):
    dull = (100 + cat.astype(np.float64) * 50 / 255).astype(np.uint8)
    out = contrast.auto_contrast(dull, contrast.autocontrast_cutoff(0))
    assert out.min() == 0 and out.max() == 255


def test_auto_contrast_leaves_a_flat_image_alone():
    flat = np.full((8, 8, 3), 77, dtype=np.uint8)
    np.testing.assert_array_equal(contrast.auto_contrast(flat, 2.0), flat)


def test_hist_eq_contrast_grows_with_clip_limit_and_keeps_chroma(cat):
    def luma_std(img: np.ndarray) -> float:
        return float(cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)[..., 0].std())

    stds = [luma_std(contrast.hist_eq(cat, c)) for c in contrast.HISTEQ_LEVELS]
    assert all(a < b for a, b in zip(stds, stds[1:])), stds
    chroma_in = cv2.cvtColor(cat, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float64)
    chroma_out = cv2.cvtColor(contrast.hist_eq(cat, 7.0), cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float64)
    assert np.abs(chroma_out - chroma_in).mean() < 2.0


def test_clahe_tiles_are_about_32_pixels():
    assert contrast.clahe_grid(256, 256) == (8, 8)
    assert contrast.clahe_grid(96, 64) == (2, 3)  # (across, down)
    assert contrast.clahe_grid(10, 10) == (1, 1)


@pytest.mark.parametrize("amount", contrast.SHARPEN_AMOUNTS)
def test_unsharp_mask_matches_float64_reference(cat, amount):
    image = cat[:40, :33]
    x = np.arange(9) - 4
    g = np.exp(-(x**2) / 2.0)
    g /= g.sum()
    padded = np.pad(image.astype(np.float64), ((4, 4), (4, 4), (0, 0)), mode="reflect")
    h, w = image.shape[:2]
    blurred = sum(g[i] * g[j] * padded[i:i + h, j:j + w] for i in range(9) for j in range(9))
    ref = image + amount * (image - blurred)
    out = contrast.unsharp_mask(image, amount).astype(np.float64)
    assert np.abs(out - np.clip(ref, 0, 255)).max() <= 0.5 + 1e-3  # float32 arithmetic, then rounding


def test_sharpen_names():
    assert [contrast.sharpen_name(a) for a in contrast.SHARPEN_AMOUNTS] == [
        "Sharpen-A0.5", "Sharpen-A1.0", "Sharpen-A1.5", "Sharpen-A2.0", "Sharpen-A2.5"]


def test_bad_parameters_are_rejected(cat):
    with pytest.raises(ValueError, match="cutoff"):
        contrast.auto_contrast(cat, 60.0)
    with pytest.raises(ValueError, match="clip_limit"):
        contrast.hist_eq(cat, 0.0)
    with pytest.raises(ValueError, match="amount"):
        contrast.unsharp_mask(cat, -1.0)
