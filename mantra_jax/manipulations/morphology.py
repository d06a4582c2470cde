"""Morphology family (hierarchy L1 node 4): Close, Dilate, Erode, Open with S in {2, 4, ..., 34}.

Parameter meaning: S is the diameter in pixels of a flat disc structuring element: the S x S grid cells whose
centres lie within S/2 of the grid centre ((S-1)/2, (S-1)/2). S=2 gives the 2x2 square, S=3 the 3x3 square,
S=4 a 4x4 square without corners, and larger S round discs. (OpenCV's own MORPH_ELLIPSE is lopsided for
even sizes, hence our own disc.) Grey-level morphology is applied to each channel independently:
- DilateMorph-S: max over the disc; ErodeMorph-S: min over the disc. For even S the disc has no centre pixel;
  its anchor is cell (S//2, S//2), a half-pixel shift that is part of the manipulation's trace.
- CloseMorph-S: dilation then erosion with the reflected disc (anchor (S-1-S//2, ...)), which is the proper
  closing: extensive (>= input) and idempotent for every S. OpenMorph-S: erosion then dilation likewise,
  anti-extensive and idempotent. (cv2.morphologyEx reuses one anchor for both steps, which shifts even-size
  openings and closings by one pixel.)
Pixels outside the image are ignored (OpenCV's default morphology border). Deterministic; the rng is ignored.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from mantra_jax.manipulations._common import Builder, check_image, ignore_rng, parse_number

SIZES: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14, 16, 19, 21, 23, 25, 27, 29, 31, 34)


@functools.lru_cache(maxsize=128)
def _disc_cached(size: int) -> np.ndarray:
    centre = (size - 1) / 2.0
    coords = np.arange(size, dtype=np.float64) - centre
    inside = coords[:, None] ** 2 + coords[None, :] ** 2 <= (size / 2.0) ** 2
    disc = inside.astype(np.uint8)
    disc.setflags(write=False)
    return disc


def disc(size: int) -> np.ndarray:
    """Flat disc structuring element of diameter `size` >= 1: (size, size) uint8 of 0/1, symmetric."""
    if not isinstance(size, (int, np.integer)) or size < 1 or size > 255:
        raise ValueError(f"disc: size must be an integer in [1, 255], got {size!r}")
    return _disc_cached(int(size))


def _anchors(size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    a = size // 2
    b = size - 1 - a
    return (a, a), (b, b)


def dilate(image: np.ndarray, size: int) -> np.ndarray:
    """Grey dilation (max over a disc of diameter `size`). (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    anchor, _ = _anchors(size)
    return cv2.dilate(image, disc(size), anchor=anchor)


def erode(image: np.ndarray, size: int) -> np.ndarray:
    """Grey erosion (min over a disc of diameter `size`). (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    anchor, _ = _anchors(size)
    return cv2.erode(image, disc(size), anchor=anchor)


def close(image: np.ndarray, size: int) -> np.ndarray:
    """Grey closing: dilation, then erosion with the reflected disc. (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    first, second = _anchors(size)
    kernel = disc(size)
    return cv2.erode(cv2.dilate(image, kernel, anchor=first), kernel, anchor=second)


def open_(image: np.ndarray, size: int) -> np.ndarray:
    """Grey opening: erosion, then dilation with the reflected disc. (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    first, second = _anchors(size)
    kernel = disc(size)
    return cv2.dilate(cv2.erode(image, kernel, anchor=first), kernel, anchor=second)


def _builder(fn) -> Builder:
    def build(token: str):
        return ignore_rng(functools.partial(fn, size=int(parse_number(token, "S"))))

    return build


BUILDERS: dict[str, Builder] = {
    "CloseMorph": _builder(close),
    "DilateMorph": _builder(dilate),
    "ErodeMorph": _builder(erode),
    "OpenMorph": _builder(open_),
}
