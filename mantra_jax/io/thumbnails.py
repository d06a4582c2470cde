"""Bounded-size copies of images and maps: the one home of the thumbnail size and of how pictures shrink.

A thumbnail's longer side is at most ``max_side`` pixels whatever the input resolution (an image already
small enough is kept as it is, never enlarged). Pictures shrink by area averaging (OpenCV ``INTER_AREA``);
label images (masks, outcome classes) by nearest neighbour, so no new label appears.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB_SIDE = 192  # longer side of every thumbnail (saved maps and report pictures), pixels


def fit_size(height: int, width: int, max_side: int = THUMB_SIDE) -> tuple[int, int]:
    """(h, w) with the aspect ratio of ``height`` x ``width`` and the longer side at most ``max_side``."""
    if height < 1 or width < 1 or max_side < 1:
        raise ValueError(f"fit_size needs positive sizes, got {height}x{width}, max_side {max_side}")
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink(array: np.ndarray, size: tuple[int, int], *, labels: bool = False) -> np.ndarray:
    """``array`` (H, W) or (H, W, C) resized to ``size`` = (h, w) (<= its own size).

    Area averaging for pictures (float or uint8 kept in their dtype), nearest neighbour when ``labels``
    (bool and integer label maps). The same array is returned when it already has ``size``.
    """
    a = np.asarray(array)
    if a.ndim not in (2, 3):
        raise ValueError(f"shrink expects (H, W) or (H, W, C), got shape {a.shape}")
    h, w = size
    if (h, w) == a.shape[:2]:
        return a
    if h > a.shape[0] or w > a.shape[1]:
        raise ValueError(f"shrink never enlarges: {a.shape[:2]} -> {size}")
    if labels:
        rows = (np.arange(h) * a.shape[0]) // h
        cols = (np.arange(w) * a.shape[1]) // w
        return a[rows[:, None], cols[None, :]]
    src = a.astype(np.float32) if a.dtype not in (np.uint8, np.float32) else a
    out = cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA)
    if out.ndim == 2 and a.ndim == 3:
        out = out[:, :, None]
    return out.astype(a.dtype) if a.dtype != out.dtype and a.dtype != np.bool_ else out


def thumbnail(array: np.ndarray, max_side: int = THUMB_SIDE, *, labels: bool = False) -> np.ndarray:
    """``array`` shrunk so that its longer side is at most ``max_side`` (see ``shrink``)."""
    a = np.asarray(array)
    return shrink(a, fit_size(a.shape[0], a.shape[1], max_side), labels=labels)
