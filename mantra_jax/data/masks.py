"""Random structured binary masks (free-form strokes, blobs, polygons) with a bounded forged area.

The paper's enhancement forgeries use "a random structured binary mask" in the style of the irregular
masks of partial-convolution inpainting (Liu et al. 2018). ``random_mask`` draws a target fraction
``t ~ U(lo, hi)`` and a characteristic length ``L = sqrt(t * H * W)``, then unions shapes of size ~L:

* stroke: a thick polyline of 2..6 random-walk vertices (thickness 0.1 L .. 0.35 L);
* blob: a 5x5 uniform noise field upsampled (bicubic) to ~L and thresholded under a radial envelope, giving
  an organic, mostly convex region;
* polygon: a star-shaped polygon with 3..9 vertices at sorted random angles and radii 0.4 R .. R.

A shape that would push the forged fraction above ``hi`` is discarded and the next shapes are made smaller
(x0.7); shapes are added until the fraction reaches ``t``; components smaller than 1 % of the forged area
(and 16 px) are then dropped when the fraction stays >= ``lo``. The result is therefore always in
``[lo, hi]``: if 64 draws do not get there, a rectangle of area ~``t`` at a random place is returned (rare;
the tests check the range over many seeds).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

SHAPES = ("stroke", "blob", "polygon")
DEFAULT_AREA = (0.05, 0.35)
_MAX_DRAWS = 64


def check_area(area: Sequence[float], height: int, width: int) -> tuple[float, float]:
    """Validates a forged-area fraction range (lo, hi) with 0 < lo <= hi < 1, reachable on H x W."""
    if len(area) != 2:
        raise ValueError(f"area must be a (lo, hi) pair, got {area!r}")
    lo, hi = float(area[0]), float(area[1])
    if not 0.0 < lo <= hi < 1.0:
        raise ValueError(f"area range must satisfy 0 < lo <= hi < 1, got ({lo}, {hi})")
    pixels = height * width
    if int(np.floor(hi * pixels)) < int(np.ceil(lo * pixels)) or lo * pixels < 1:
        raise ValueError(f"area range ({lo}, {hi}) holds no whole pixel count on a {height}x{width} mask")
    return lo, hi


def _stroke(canvas: np.ndarray, rng: np.random.Generator, length: float) -> None:
    h, w = canvas.shape
    n = int(rng.integers(2, 7))
    point = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    angle = rng.uniform(0, 2 * np.pi)
    points = [point.copy()]
    for _ in range(n - 1):
        angle += rng.uniform(-np.pi / 2, np.pi / 2)
        point = point + rng.uniform(0.4, 1.2) * length * np.array([np.cos(angle), np.sin(angle)])
        points.append(point.copy())
    thickness = max(2, int(round(rng.uniform(0.1, 0.35) * length)))
    pts = np.round(np.stack(points)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], isClosed=False, color=1, thickness=thickness, lineType=cv2.LINE_8)


def _blob(canvas: np.ndarray, rng: np.random.Generator, length: float) -> None:
    h, w = canvas.shape
    side = int(np.clip(round(rng.uniform(0.9, 1.7) * length), 4, 2 * max(h, w)))
    field = cv2.resize(rng.random((5, 5)).astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC)
    grid = (np.arange(side, dtype=np.float32) + 0.5) / side * 2 - 1
    envelope = 1.0 - (grid[None, :] ** 2 + grid[:, None] ** 2)
    blob = (0.6 * field + envelope) > 0.6
    y0, x0 = int(rng.integers(-side // 2, h - side // 2)), int(rng.integers(-side // 2, w - side // 2))
    ys, xs = slice(max(y0, 0), min(y0 + side, h)), slice(max(x0, 0), min(x0 + side, w))
    canvas[ys, xs] |= blob[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0].astype(np.uint8)


def _polygon(canvas: np.ndarray, rng: np.random.Generator, length: float) -> None:
    h, w = canvas.shape
    k = int(rng.integers(3, 10))
    radius = rng.uniform(0.5, 0.9) * length
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = rng.uniform(0.4, 1.0, k) * radius
    centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    pts = centre + np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    cv2.fillPoly(canvas, [np.round(pts).astype(np.int32).reshape(-1, 1, 2)], color=1, lineType=cv2.LINE_8)


_DRAW = {"stroke": _stroke, "blob": _blob, "polygon": _polygon}


def _rectangle(height: int, width: int, target: float, rng: np.random.Generator) -> np.ndarray:
    count = int(round(target * height * width))
    rh = int(np.clip(round(np.sqrt(count * height / width)), 1, height))
    rw = int(np.clip(round(count / rh), 1, width))
    y0, x0 = int(rng.integers(0, height - rh + 1)), int(rng.integers(0, width - rw + 1))
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y0 + rh, x0:x0 + rw] = 1
    return mask


def random_mask(height: int, width: int, rng: np.random.Generator, *, area: Sequence[float] = DEFAULT_AREA,
                shapes: Sequence[str] = SHAPES) -> np.ndarray:
    """A random structured mask (H, W) uint8 in {0, 1} whose mean lies in ``area`` = (lo, hi).

    Args:
      height, width: mask size.
      rng: the only source of randomness.
      area: forged-fraction range, 0 < lo <= hi < 1.
      shapes: non-empty subset of SHAPES to draw from (uniformly).
    """
    lo, hi = check_area(area, height, width)
    if not shapes or any(s not in _DRAW for s in shapes):
        raise ValueError(f"shapes must be a non-empty subset of {SHAPES}, got {tuple(shapes)!r}")
    pixels = float(height * width)
    target = rng.uniform(lo, hi)
    length = np.sqrt(target * pixels)
    shrink = 1.0
    mask = np.zeros((height, width), np.uint8)
    count = 0
    for _ in range(_MAX_DRAWS):
        candidate = mask.copy()
        _DRAW[shapes[int(rng.integers(len(shapes)))]](candidate, rng, length * shrink)
        new_count = int(np.count_nonzero(candidate))
        if new_count > hi * pixels:
            shrink *= 0.7
            continue
        mask, count = candidate, new_count
        if count >= target * pixels:
            break
    if not lo * pixels <= count <= hi * pixels:
        return _rectangle(height, width, target, rng)
    return _drop_specks(mask, int(np.ceil(lo * pixels)))


def _drop_specks(mask: np.ndarray, min_count: int) -> np.ndarray:
    """Removes tiny components (< 1 % of the forged area, < 16 px) left by shrunken shapes, keeping >= min_count."""
    count = int(np.count_nonzero(mask))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    small = [k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] < max(16, 0.01 * count)]
    removed = int(sum(stats[k, cv2.CC_STAT_AREA] for k in small))
    if not small or count - removed < min_count:
        return mask
    return np.where(np.isin(labels, small), 0, mask).astype(np.uint8)
