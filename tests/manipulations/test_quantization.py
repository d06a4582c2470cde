"""Quantization / dithering family."""

from __future__ import annotations

import numpy as np
import pytest

from mantra_jax.manipulations import quantization


def _colours(image: np.ndarray) -> int:
    return len(np.unique(image.reshape(-1, 3), axis=0))


@pytest.mark.parametrize("colours", quantization.COLOURS)
def test_quantization_uses_at_most_c_colours(cat, colours):
    out = quantization.quantize_colours(cat, colours)
    assert _colours(out) <= colours < _colours(cat)


def test_quantization_error_falls_with_more_colours(cat):
    errors = [float(np.abs(quantization.quantize_colours(cat, c).astype(np.float64) - cat).mean())
              for c in (50, 125, 225)]
    assert errors[0] > errors[1] > errors[2] > 0, errors


def test_dithering_uses_the_web_palette(cat):
    out = quantization.dither_web(cat)
    assert set(np.unique(out).tolist()) <= set(quantization.WEB_LEVELS)


def test_dithering_keeps_the_mean_of_a_flat_patch():
    flat = np.full((64, 64, 3), (128, 90, 30), dtype=np.uint8)
    out = quantization.dither_web(flat).astype(np.float64)
    assert len(np.unique(out[..., 0])) == 2  # mixes the two nearest levels, 102 and 153
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), (128, 90, 30), atol=3.0)


@pytest.mark.parametrize("colours", [1, 257, 50.0])
def test_bad_colour_count_is_rejected(cat, colours):
    with pytest.raises(ValueError, match="colours"):
        quantization.quantize_colours(cat, colours)


def test_dithering_takes_no_parameter():
    with pytest.raises(ValueError, match="no parameter"):
        quantization.BUILDERS["Dithering"]("C3")
