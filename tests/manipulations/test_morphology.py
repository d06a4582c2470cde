"""Morphology family: the disc, numpy references for dilation/erosion, closing/opening properties."""

from __future__ import annotations

import numpy as np
import pytest

from mantra_jax.manipulations import morphology


def test_disc_shapes():
    np.testing.assert_array_equal(morphology.disc(2), np.ones((2, 2)))
    np.testing.assert_array_equal(morphology.disc(3), np.ones((3, 3)))
    four = np.ones((4, 4))
    four[[0, 0, 3, 3], [0, 3, 0, 3]] = 0
    np.testing.assert_array_equal(morphology.disc(4), four)
    for size in morphology.SIZES:
        d = morphology.disc(size)
        assert d.shape == (size, size)
        np.testing.assert_array_equal(d, d[::-1])
        np.testing.assert_array_equal(d, d.T)
        assert d[size // 2, size // 2] == 1


def _reference(image: np.ndarray, size: int, reduce) -> np.ndarray:
    """Max/min over the disc anchored at (size//2, size//2), ignoring pixels outside the image (float64)."""
    kernel = morphology.disc(size)
    a = size // 2
    h, w = image.shape[:2]
    fill = -np.inf if reduce is np.maximum else np.inf
    padded = np.full((h + size, w + size, 3), fill)
    padded[a:a + h, a:a + w] = image
    out = np.full((h, w, 3), fill)
    for i, j in zip(*np.nonzero(kernel)):
        out = reduce(out, padded[i:i + h, j:j + w])
    return out


@pytest.mark.parametrize("size", [2, 3, 4, 6])
def test_dilate_and_erode_match_numpy_reference(cat, size):
    image = cat[:23, :17]
    np.testing.assert_array_equal(morphology.dilate(image, size), _reference(image, size, np.maximum))
    np.testing.assert_array_equal(morphology.erode(image, size), _reference(image, size, np.minimum))


@pytest.mark.parametrize("size", [2, 4, 19])
def test_closing_is_extensive_and_idempotent(cat, size):
    closed = morphology.close(cat, size)
    assert (closed >= cat).all()
    np.testing.assert_array_equal(morphology.close(closed, size), closed)


@pytest.mark.parametrize("size", [2, 4, 19])
def test_opening_is_anti_extensive_and_idempotent(cat, size):
    opened = morphology.open_(cat, size)
    assert (opened <= cat).all()
    np.testing.assert_array_equal(morphology.open_(opened, size), opened)


def test_bad_size_is_rejected(cat):
    with pytest.raises(ValueError, match="size"):
        morphology.dilate(cat, 0)
