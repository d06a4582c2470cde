"""Shared plumbing for the manipulation families: input checks, parameter parsing, float -> uint8.

Every manipulation maps a uint8 RGB image of shape (H, W, 3) to a new uint8 RGB image of the same shape and
never writes into its input. The helpers here make those checks and conversions identical in every family.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# A built manipulation: (image (H, W, 3) uint8, rng or None) -> image (H, W, 3) uint8.
ImageFn = Callable[[np.ndarray, "np.random.Generator | None"], np.ndarray]
# A family builder: parameter token from the hierarchy (e.g. "K29", "s0.95", "Q95/40", "") -> ImageFn.
Builder = Callable[[str], ImageFn]


def check_image(image: object, what: str = "image") -> np.ndarray:
    """Returns `image` if it is a numpy uint8 array of shape (H, W, 3), H, W >= 1; else raises ValueError."""
    if not isinstance(image, np.ndarray):
        raise ValueError(
            f"{what} must be a numpy.ndarray of shape (H, W, 3) and dtype uint8, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{what} must have dtype uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{what} must have shape (H, W, 3) with H, W >= 1 (RGB), got {image.shape}")
    return image


def check_rng(rng: object, name: str) -> np.random.Generator:
    """Returns `rng` if it is a numpy Generator, else raises ValueError (noise types need one)."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"{name} draws random numbers: pass a numpy.random.Generator as rng, got {type(rng).__name__}")
    return rng


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Rounds (half to even) and clips a float array to [0, 255] and returns it as C-contiguous uint8."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def parse_number(token: str, prefix: str, kind: type = int) -> int | float:
    """Parses a hierarchy parameter token such as "K29" (prefix "K") into 29; raises ValueError otherwise."""
    if not token.startswith(prefix):
        raise ValueError(f"parameter {token!r} does not start with {prefix!r}")
    body = token[len(prefix):]
    try:
        value = kind(body)
    except ValueError:
        raise ValueError(f"parameter {token!r}: {body!r} is not a valid {kind.__name__}") from None
    return value


def ignore_rng(fn: Callable[[np.ndarray], np.ndarray]) -> ImageFn:
    """Adapts a deterministic image function to the (image, rng) signature; the rng is not used."""

    def apply(image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        del rng
        return fn(image)

    return apply


def to_bgr(image: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) -> contiguous BGR copy for OpenCV codecs and colour conversions."""
    return np.ascontiguousarray(image[..., ::-1])


def from_bgr(image: np.ndarray) -> np.ndarray:
    """BGR (H, W, 3) from OpenCV -> contiguous RGB copy."""
    return np.ascontiguousarray(image[..., ::-1])
