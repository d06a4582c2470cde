"""Shared helpers: image checks, rounding, parameter tokens."""

from __future__ import annotations

import numpy as np
import pytest

from mantra_jax.manipulations import _common


def test_check_image_accepts_rgb_uint8():
    image = np.zeros((3, 4, 3), np.uint8)
    assert _common.check_image(image) is image


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((3, 4, 3), np.int16), "dtype uint8"),
        (np.zeros((3, 4), np.uint8), r"shape \(H, W, 3\)"),
        (np.zeros((3, 4, 1), np.uint8), r"shape \(H, W, 3\)"),
        (np.zeros((3, 0, 3), np.uint8), r"H, W >= 1"),
        ("image.png", "numpy.ndarray"),
    ],
)
def test_check_image_rejects_with_a_clear_message(bad, message):
    with pytest.raises(ValueError, match=message):
        _common.check_image(bad)


def test_to_uint8_rounds_half_to_even_and_clips():
    x = np.array([-3.0, 0.5, 1.5, 2.49, 254.5, 300.0])
    np.testing.assert_array_equal(_common.to_uint8(x), [0, 0, 2, 2, 254, 255])


def test_parse_number():
    assert _common.parse_number("K29", "K") == 29
    assert _common.parse_number("s0.95", "s", float) == 0.95
    with pytest.raises(ValueError, match="does not start"):
        _common.parse_number("Q29", "K")
    with pytest.raises(ValueError, match="not a valid"):
        _common.parse_number("Kx", "K")
