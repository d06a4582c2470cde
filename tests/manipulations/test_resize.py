"""Resize family: down-and-up round trip semantics."""

from __future__ import annotations

import numpy as np
import pytest

from mantra_jax.manipulations import resize


def test_scaled_size_rounds_half_up_and_keeps_one_pixel():
    assert resize.scaled_size(256, 256, 0.15) == (38, 38)
    assert resize.scaled_size(10, 6, 0.25) == (3, 2)  # 2.5 -> 3, 1.5 -> 2
    assert resize.scaled_size(2, 3, 0.15) == (1, 1)


def test_nearest_half_scale_is_exact_on_a_block_image():
    blocks = np.random.default_rng(0).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    image = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(resize.resize_roundtrip(image, 0.5, "NEAREST"), image)


@pytest.mark.parametrize("interpolation", sorted(resize.INTERPOLATIONS))
def test_flat_image_stays_flat(interpolation):
    image = np.full((20, 30, 3), (10, 200, 77), dtype=np.uint8)
    np.testing.assert_array_equal(resize.resize_roundtrip(image, 0.31, interpolation), image)


@pytest.mark.parametrize("interpolation", sorted(resize.INTERPOLATIONS))
def test_smaller_scale_loses_more(cat, interpolation):
    def error(scale: float) -> float:
        out = resize.resize_roundtrip(cat, scale, interpolation)
        return float(np.abs(out.astype(np.float64) - cat).mean())

    assert error(0.15) > error(0.52) > error(0.95) > 0


def test_bad_arguments_are_rejected(cat):
    with pytest.raises(ValueError, match="scale"):
        resize.resize_roundtrip(cat, 1.5, "AREA")
    with pytest.raises(ValueError, match="interpolation"):
        resize.resize_roundtrip(cat, 0.5, "BICUBIC")
