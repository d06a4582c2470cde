"""Resize family (hierarchy L1 node 2): AREA, CUBIC, LANCZOS4, LINEAR, NEAREST resampling with scale
s in {0.15, 0.20, ..., 0.95}.

Definition: the image is resized down by the factor s (new size max(1, round(s*H)) x max(1, round(s*W)),
round half up) with the named OpenCV interpolation, then resized back up to its original H x W with the same
interpolation. The output therefore keeps the input shape (so a patch-level classifier sees the traces of
resampling, not a size change), and smaller s loses more detail. Deterministic; the rng is ignored.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from mantra_jax.manipulations._common import Builder, check_image, ignore_rng, parse_number

INTERPOLATIONS: dict[str, int] = {
    "AREA": cv2.INTER_AREA,
    "CUBIC": cv2.INTER_CUBIC,
    "LANCZOS4": cv2.INTER_LANCZOS4,
    "LINEAR": cv2.INTER_LINEAR,
    "NEAREST": cv2.INTER_NEAREST,
}


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The (height, width) of the down-scaled intermediate image."""
    return max(1, math.floor(height * scale + 0.5)), max(1, math.floor(width * scale + 0.5))


def resize_roundtrip(image: np.ndarray, scale: float, interpolation: str) -> np.ndarray:
    """Down by `scale` in (0, 1], back up to the input size, both with `interpolation` (a key of
    INTERPOLATIONS). image (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"resize_roundtrip: scale must be in (0, 1], got {scale!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"resize_roundtrip: interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}")
    flag = INTERPOLATIONS[interpolation]
    height, width = image.shape[:2]
    small_h, small_w = scaled_size(height, width, scale)
    small = cv2.resize(image, (small_w, small_h), interpolation=flag)
    return cv2.resize(small, (width, height), interpolation=flag)


def _builder(interpolation: str) -> Builder:
    def build(token: str):
        scale = float(parse_number(token, "s", float))
        return ignore_rng(functools.partial(resize_roundtrip, scale=scale, interpolation=interpolation))

    return build


BUILDERS: dict[str, Builder] = {f"{name}Resize": _builder(name) for name in INTERPOLATIONS}
