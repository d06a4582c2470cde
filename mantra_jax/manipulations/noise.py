"""Noise family (hierarchy L1 node 5): Gaussian (S), impulse (P), Poisson (L), uniform (M), each with
parameter values {3, 5, 7, 9, 11, 13, 15, 17, 20, 22, 24, 26, 28, 30, 32, 35}.

Parameter meanings (all in grey levels of the 0..255 scale unless stated; noise is independent per pixel and
per channel unless stated; results are rounded half to even and clipped to [0, 255]):
- GaussianNoise-S: add N(0, S^2).
- ImpluseNoise-P (the hierarchy's spelling): salt-and-pepper noise; each pixel is hit with probability
  P percent and then set to black (0, 0, 0) or white (255, 255, 255) with equal probability (all channels
  together, the classic sensor/transmission defect).
- PoissonNoise-L: shot noise. The image is read as photon counts with N = (255 / L)^2 photons at white
  (lambda = N * x / 255), a Poisson count is drawn per pixel and channel and mapped back by 255 / N. So the
  noise is signal dependent with standard deviation L * sqrt(x / 255) grey levels: L at white, 0 at black.
- UniformNoise-M: add a uniform variate on [-M, M] (standard deviation M / sqrt(3)).

These are the only types that use the rng; they raise ValueError without a numpy Generator. The draws are made
in a fixed order, so one seed gives one output.
"""

from __future__ import annotations

import functools

import numpy as np

from mantra_jax.manipulations._common import Builder, ImageFn, check_image, check_rng, parse_number, to_uint8

LEVELS: tuple[int, ...] = (3, 5, 7, 9, 11, 13, 15, 17, 20, 22, 24, 26, 28, 30, 32, 35)


def _check_positive(value: float, name: str, upper: float | None = None) -> None:
    if not np.isfinite(value) or value <= 0 or (upper is not None and value > upper):
        bound = f"(0, {upper}]" if upper is not None else "> 0"
        raise ValueError(f"{name}: parameter must be {bound}, got {value!r}")


def gaussian_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Additive N(0, sigma^2) noise. image (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    check_rng(rng, "gaussian_noise")
    _check_positive(sigma, "gaussian_noise")
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= np.float32(sigma)
    noise += image
    return to_uint8(noise)


def impulse_noise(image: np.ndarray, rng: np.random.Generator, percent: float) -> np.ndarray:
    """Salt-and-pepper noise hitting `percent` % of the pixels. (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    check_rng(rng, "impulse_noise")
    _check_positive(percent, "impulse_noise", 100.0)
    height, width = image.shape[:2]
    u = rng.random((2, height, width), dtype=np.float32)
    hit = u[0] < np.float32(percent / 100.0)
    white = u[1] < np.float32(0.5)
    out = image.copy()
    out[hit] = np.where(white[hit], np.uint8(255), np.uint8(0))[:, None]
    return out


@functools.lru_cache(maxsize=64)
def _poisson_rates(scale: float) -> np.ndarray:
    rates = np.arange(256, dtype=np.float64) * ((255.0 / scale) ** 2 / 255.0)
    rates.setflags(write=False)
    return rates


def poisson_noise(image: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Shot noise with standard deviation `scale` grey levels at white. (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    check_rng(rng, "poisson_noise")
    _check_positive(scale, "poisson_noise", 255.0)
    photons_at_white = (255.0 / scale) ** 2
    counts = rng.poisson(_poisson_rates(float(scale))[image])
    return to_uint8(counts * (255.0 / photons_at_white))


def uniform_noise(image: np.ndarray, rng: np.random.Generator, half_width: float) -> np.ndarray:
    """Additive U[-half_width, half_width] noise. (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    check_rng(rng, "uniform_noise")
    _check_positive(half_width, "uniform_noise")
    noise = rng.random(image.shape, dtype=np.float32)
    noise *= np.float32(2.0 * half_width)
    noise += image
    noise -= np.float32(half_width)
    return to_uint8(noise)


def _builder(fn, prefix: str, keyword: str) -> Builder:
    def build(token: str) -> ImageFn:
        value = parse_number(token, prefix)
        partial = functools.partial(fn, **{keyword: float(value)})

        def apply(image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
            return partial(image, rng)

        return apply

    return build


BUILDERS: dict[str, Builder] = {
    "GaussianNoise": _builder(gaussian_noise, "S", "sigma"),
    "ImpluseNoise": _builder(impulse_noise, "P", "percent"),
    "PoissonNoise": _builder(poisson_noise, "L", "scale"),
    "UniformNoise": _builder(uniform_noise, "M", "half_width"),
}

# Which catalogue families draw from the rng (the others ignore it).
RANDOM_FAMILIES: frozenset[str] = frozenset(BUILDERS)
