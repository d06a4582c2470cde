"""Noise family: moments against their float64 definitions, with tolerances of several standard errors."""

from __future__ import annotations

import numpy as np
import pytest

from mantra_jax.manipulations import noise

_FLAT = np.full((128, 128, 3), 128, dtype=np.uint8)  # 49152 samples per draw


def _diff(out: np.ndarray, image: np.ndarray) -> np.ndarray:
    return out.astype(np.float64) - image


def test_gaussian_noise_has_the_stated_sigma():
    d = _diff(noise.gaussian_noise(_FLAT, np.random.default_rng(0), 9.0), _FLAT)
    # rounding to integers adds variance 1/12
    assert abs(d.mean()) < 0.2
    assert d.std() == pytest.approx(np.sqrt(81 + 1 / 12), rel=0.02)


def test_uniform_noise_has_the_stated_range_and_variance():
    d = _diff(noise.uniform_noise(_FLAT, np.random.default_rng(0), 20.0), _FLAT)
    assert np.abs(d).max() <= 20
    assert abs(d.mean()) < 0.2
    assert d.var() == pytest.approx(20.0**2 / 3 + 1 / 12, rel=0.03)


def test_impulse_noise_hits_the_stated_fraction_with_black_or_white():
    out = noise.impulse_noise(_FLAT, np.random.default_rng(0), 13.0)
    hit = (out != 128).any(-1)
    n = hit.size
    assert hit.mean() == pytest.approx(0.13, abs=4 * np.sqrt(0.13 * 0.87 / n))
    values = out[hit]
    assert ((values == 0).all(-1) | (values == 255).all(-1)).all()
    assert (values[:, 0] == 255).mean() == pytest.approx(0.5, abs=4 * np.sqrt(0.25 / hit.sum()))
    assert (out[~hit] == 128).all()


@pytest.mark.parametrize("scale", [3.0, 11.0, 35.0])
def test_poisson_noise_variance_is_signal_dependent(scale):
    out = noise.poisson_noise(_FLAT, np.random.default_rng(0), scale)
    d = _diff(out, _FLAT)
    expected_var = scale**2 * 128 / 255  # photons N = (255/L)^2 at white; var = (255/N)^2 * N * 128/255
    assert abs(d.mean()) < 4 * np.sqrt(expected_var / d.size) + 0.05
    assert d.var() == pytest.approx(expected_var + 1 / 12, rel=0.04)


def test_poisson_noise_keeps_black_black():
    black = np.zeros((16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(noise.poisson_noise(black, np.random.default_rng(0), 35.0), black)


@pytest.mark.parametrize("fn", [noise.gaussian_noise, noise.impulse_noise, noise.poisson_noise,
                                noise.uniform_noise])
def test_noise_needs_a_generator(fn):
    with pytest.raises(ValueError, match="Generator"):
        fn(_FLAT, None, 5.0)


@pytest.mark.parametrize("fn", [noise.gaussian_noise, noise.impulse_noise, noise.poisson_noise,
                                noise.uniform_noise])
def test_non_positive_parameter_is_rejected(fn):
    with pytest.raises(ValueError, match="parameter"):
        fn(_FLAT, np.random.default_rng(0), 0.0)


def test_impulse_percentage_above_100_is_rejected():
    with pytest.raises(ValueError, match="parameter"):
        noise.impulse_noise(_FLAT, np.random.default_rng(0), 101.0)
