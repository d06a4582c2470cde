"""Compression family: quality ordering, double JPEG composition, colour order."""

from __future__ import annotations

import numpy as np
import pytest

from mantra_jax.manipulations import compression


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


@pytest.mark.parametrize("codec", [compression.jpeg, compression.webp])
def test_error_falls_as_quality_rises(cat, codec):
    errors = [_mae(codec(cat, q), cat) for q in (36, 70, 100)]
    assert errors[0] > errors[1] > errors[2] > 0, errors


def test_double_jpeg_is_two_jpegs(cat):
    np.testing.assert_array_equal(compression.double_jpeg(cat, 70, 91),
                                  compression.jpeg(compression.jpeg(cat, 70), 91))
    assert not np.array_equal(compression.double_jpeg(cat, 70, 91), compression.jpeg(cat, 91))


@pytest.mark.parametrize("codec", [compression.jpeg, compression.webp])
def test_channels_keep_their_order(codec):
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[..., 0] = 220  # red
    image[..., 2] = 30
    out = codec(image, 95).astype(np.float64)
    assert abs(out[..., 0].mean() - 220) < 4 and abs(out[..., 2].mean() - 30) < 4


@pytest.mark.parametrize("quality", [0, 101, 50.5])
def test_bad_quality_is_rejected(cat, quality):
    with pytest.raises(ValueError, match="quality"):
        compression.jpeg(cat, quality)
    with pytest.raises(ValueError, match="quality"):
        compression.webp(cat, quality)


def test_double_jpeg_token_must_have_two_qualities():
    with pytest.raises(ValueError, match="Q70/91"):
        compression.BUILDERS["JPEGDoubleCompress"]("Q70")
