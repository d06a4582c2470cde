"""Blur family against numpy float64 references."""

from __future__ import annotations

import numpy as np
import pytest

from mantra_jax.manipulations import blur


def _windows(image: np.ndarray, k: int, mode: str) -> np.ndarray:
    """(H, W, 3, k*k) float64 window stack of `image` padded with numpy `mode`."""
    r = k // 2
    padded = np.pad(image.astype(np.float64), ((r, r), (r, r), (0, 0)), mode=mode)
    h, w = image.shape[:2]
    return np.stack([padded[i:i + h, j:j + w] for i in range(k) for j in range(k)], axis=-1)


@pytest.mark.parametrize("k", [3, 7])
def test_box_blur_matches_reflect101_mean(cat, k):
    image = cat[:24, :20]
    ref = _windows(image, k, "reflect").mean(-1)  # numpy 'reflect' == OpenCV BORDER_REFLECT_101
    out = blur.box_blur(image, k).astype(np.float64)
    assert np.abs(out - ref).max() <= 0.5 + 1e-9  # rounding only


def test_gaussian_sigma_follows_the_opencv_rule():
    assert blur.gaussian_sigma(9) == pytest.approx(1.7)
    assert blur.gaussian_sigma(33) == pytest.approx(5.3)


_OPENCV_SMALL_KERNELS = {3: [1, 2, 1], 5: [1, 4, 6, 4, 1], 7: [2, 7, 14, 18, 14, 7, 2]}


@pytest.mark.parametrize("k", [3, 5, 7, 9, 21])
def test_gaussian_blur_matches_float64_reference(cat, k):
    image = cat[:30, :26]
    if k in _OPENCV_SMALL_KERNELS:
        g = np.array(_OPENCV_SMALL_KERNELS[k], dtype=np.float64)
    else:
        x = np.arange(k) - k // 2
        g = np.exp(-(x**2) / (2 * blur.gaussian_sigma(k) ** 2))
    g /= g.sum()
    ref = (_windows(image, k, "reflect") * np.outer(g, g).ravel()).sum(-1)
    out = blur.gaussian_blur(image, k).astype(np.float64)
    assert np.abs(out - ref).max() <= 1.0  # OpenCV uses fixed-point arithmetic for uint8


@pytest.mark.parametrize("k", [3, 5, 11])
def test_median_blur_matches_replicated_border_median(cat, k):
    image = cat[:21, :19]
    ref = np.median(_windows(image, k, "edge"), axis=-1)
    np.testing.assert_array_equal(blur.median_blur(image, k), ref.astype(np.uint8))


def test_haar_transform_is_exactly_invertible():
    x = np.random.default_rng(0).normal(size=(16, 8, 3))
    bands = blur.haar_forward(x)
    np.testing.assert_allclose(blur.haar_inverse(*bands), x, rtol=0, atol=1e-12)


def test_haar_coefficients_follow_the_definition():
    a, b, c, d = 10.0, 4.0, 2.0, 1.0
    x = np.array([[[a], [b]], [[c], [d]]])
    approx, vert, horiz, diag = (float(t[0, 0, 0]) for t in blur.haar_forward(x))
    assert (approx, vert, horiz, diag) == ((a + b + c + d) / 4, (a + b - c - d) / 4, (a - b + c - d) / 4,
                                           (a - b - c + d) / 4)


def test_wavelet_shrink_with_zero_threshold_is_identity(cat):
    image = cat[:37, :29]  # odd sizes exercise the padding
    np.testing.assert_array_equal(blur.wavelet_shrink(image, 3, 0.0), image)


def test_wavelet_blur_removes_more_detail_for_larger_k(cat):
    def detail(img: np.ndarray) -> float:
        f = img.astype(np.float64)
        return float(np.abs(np.diff(f, axis=0)).mean() + np.abs(np.diff(f, axis=1)).mean())

    values = [detail(blur.wavelet_blur(cat, k)) for k in blur.WAVELET_KERNEL_SIZES]
    assert values[0] < detail(cat)
    assert all(a > b for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize("fn", [blur.box_blur, blur.gaussian_blur, blur.median_blur, blur.wavelet_blur])
@pytest.mark.parametrize("k", [4, 1, 0])
def test_bad_kernel_size_is_rejected(cat, fn, k):
    with pytest.raises(ValueError, match="kernel size"):
        fn(cat, k)
