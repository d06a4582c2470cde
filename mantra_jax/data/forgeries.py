"""The four forgery syntheses of the paper's anomaly-detection data: splicing, copy-move, removal, enhancement.

Each takes a pristine uint8 RGB patch P (H, W, 3), a binary mask M (H, W) in {0, 1} and a numpy Generator,
and returns the forged image Z (H, W, 3) uint8 with ``Z == P`` exactly wherever ``M == 0``:

* enhancement (paper): ``Z = P (1 - M) + y(P) M`` with y a manipulation (the caller draws it from the
  385-type catalogue);
* removal (paper: OpenCV inpainting): ``cv2.inpaint`` with TELEA or Navier-Stokes (chosen at random) and a
  radius drawn from ``radius`` (2..5 px by default: larger radii cost far more for little change; measured:
  README, Benchmarks);
* splicing: the mask's bounding box is filled from a random window of another photo's patch rescaled by
  ``s ~ U(scale)`` (raised when needed so the window fits);
* copy-move: the masked region receives content of the same patch moved by an integer shift of at least a
  quarter of the region's larger side, and (each with probability 1/2) rescaled by ``s ~ U(scale)`` and
  rotated by up to ``max_rotation`` degrees; the source region is kept inside the patch whenever possible
  (else the patch is reflected at its borders).

Feathering (splicing and copy-move): a width ``w`` is drawn uniformly from {0, ..., feather}; the blend
weight is ``alpha = clip(d / w, 0, 1)`` where ``d`` is the Euclidean distance from a masked pixel to the
nearest unmasked one (``alpha = M`` when ``w <= 1``). The blend is thus soft only INSIDE the mask, along its
edge: pixels outside the mask are never changed and the mask, the ground truth, stays binary (an edge
pixel blended at 1/w is still labelled forged).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

FORGERY_KINDS = ("splicing", "copy_move", "removal", "enhancement")
DEFAULT_SCALE = (0.75, 1.33)
DEFAULT_FEATHER = 6
DEFAULT_RADIUS = (2, 5)
DEFAULT_MAX_ROTATION = 30.0

Manipulate = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def check_pair(image: np.ndarray, mask: np.ndarray, what: str) -> None:
    """Validates an (H, W, 3) uint8 image and an (H, W) {0, 1} uint8 mask."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what}: image must be (H, W, 3) uint8, got {image.dtype} {image.shape}")
    if mask.dtype != np.uint8 or mask.shape != image.shape[:2]:
        raise ValueError(f"{what}: mask must be uint8 of shape {image.shape[:2]}, got {mask.dtype} {mask.shape}")
    if mask.max(initial=0) > 1:
        raise ValueError(f"{what}: mask must hold only 0 and 1")
    if not mask.any():
        raise ValueError(f"{what}: mask is empty")


def feather_alpha(mask: np.ndarray, width: float) -> np.ndarray:
    """Blend weight (H, W) float32: ``clip(d / width, 0, 1)`` inside the mask, 0 outside (M when width <= 1)."""
    if width <= 1:
        return mask.astype(np.float32)
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.clip(distance / np.float32(width), 0.0, 1.0).astype(np.float32)


def composite(base: np.ndarray, content: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``round(base (1 - alpha) + content alpha)`` as uint8, exactly ``base`` where alpha == 0."""
    a = alpha[:, :, None]
    blended = np.rint(base.astype(np.float32) * (1 - a) + content.astype(np.float32) * a)
    return np.where(a > 0, np.clip(blended, 0, 255).astype(np.uint8), base)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1


def _feather_width(rng: np.random.Generator, feather: int) -> int:
    if feather < 0:
        raise ValueError(f"feather must be >= 0, got {feather}")
    return int(rng.integers(0, feather + 1))


def _check_range(values: Sequence[float], what: str, positive: bool = True) -> tuple[float, float]:
    lo, hi = float(values[0]), float(values[1])
    if not lo <= hi or (positive and lo <= 0):
        raise ValueError(f"{what} must be a ({'positive ' if positive else ''}lo, hi) pair with lo <= hi, "
                         f"got {tuple(values)}")
    return lo, hi


def enhance(patch: np.ndarray, mask: np.ndarray, manipulate: Manipulate, rng: np.random.Generator) -> np.ndarray:
    """Enhancement: ``Z = P (1 - M) + manipulate(P, rng) M``."""
    check_pair(patch, mask, "enhance")
    manipulated = manipulate(patch, rng)
    if manipulated.shape != patch.shape or manipulated.dtype != np.uint8:
        raise ValueError(f"enhance: manipulation returned {manipulated.dtype} {manipulated.shape}, expected "
                         f"uint8 {patch.shape}")
    return np.where(mask[:, :, None] == 1, manipulated, patch)


def remove(patch: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *,
           radius: Sequence[int] = DEFAULT_RADIUS) -> np.ndarray:
    """Removal: OpenCV inpainting (TELEA or Navier-Stokes, radius in [radius[0], radius[1]]) of the mask."""
    check_pair(patch, mask, "remove")
    lo, hi = int(radius[0]), int(radius[1])
    if not 1 <= lo <= hi:
        raise ValueError(f"remove: radius must be a (lo, hi) pair with 1 <= lo <= hi, got {tuple(radius)}")
    method = cv2.INPAINT_TELEA if rng.integers(2) == 0 else cv2.INPAINT_NS
    filled = cv2.inpaint(np.ascontiguousarray(patch), mask * np.uint8(255), int(rng.integers(lo, hi + 1)), method)
    return np.where(mask[:, :, None] == 1, filled, patch)


def splice(host: np.ndarray, donor: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *,
           scale: Sequence[float] = DEFAULT_SCALE, feather: int = DEFAULT_FEATHER) -> np.ndarray:
    """Splicing: the masked region of ``host`` comes from a rescaled window of ``donor`` (both (H, W, 3))."""
    check_pair(host, mask, "splice")
    if donor.dtype != np.uint8 or donor.ndim != 3 or donor.shape[2] != 3:
        raise ValueError(f"splice: donor must be (H, W, 3) uint8, got {donor.dtype} {donor.shape}")
    lo, hi = _check_range(scale, "splice: scale")
    y0, y1, x0, x1 = _bbox(mask)
    bh, bw = y1 - y0, x1 - x0
    s = max(rng.uniform(lo, hi), bh / donor.shape[0], bw / donor.shape[1])
    size = (max(bw, int(np.ceil(donor.shape[1] * s))), max(bh, int(np.ceil(donor.shape[0] * s))))
    interpolation = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(donor, size, interpolation=interpolation) if s != 1 else donor
    oy = int(rng.integers(0, scaled.shape[0] - bh + 1))
    ox = int(rng.integers(0, scaled.shape[1] - bw + 1))
    content = host.copy()
    content[y0:y1, x0:x1] = scaled[oy:oy + bh, ox:ox + bw]
    return composite(host, content, feather_alpha(mask, _feather_width(rng, feather)))


def _copy_move_map(mask: np.ndarray, rng: np.random.Generator, scale: tuple[float, float],
                   max_rotation: float) -> tuple[np.ndarray, bool]:
    """A 2x3 map from target (x, y) to source coordinates, and whether the source lies inside the patch."""
    h, w = mask.shape
    y0, y1, x0, x1 = _bbox(mask)
    centre = np.array([(x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2])
    corners = np.array([[x0, y0], [x1 - 1, y0], [x0, y1 - 1], [x1 - 1, y1 - 1]], np.float64) - centre
    min_shift = max(4.0, 0.25 * max(y1 - y0, x1 - x0))
    linear = np.eye(2)
    for attempt in range(20):
        s = rng.uniform(*scale) if rng.integers(2) else 1.0
        theta = np.deg2rad(rng.uniform(-max_rotation, max_rotation)) if rng.integers(2) else 0.0
        cos, sin = np.cos(theta), np.sin(theta)
        linear = np.array([[cos, -sin], [sin, cos]]) / s  # target offset -> source offset
        half = np.abs(corners @ linear.T).max(axis=0)
        lo, hi = half, np.array([w - 1, h - 1]) - half
        if np.any(lo > hi):
            continue
        source = np.rint(rng.uniform(lo, hi) - centre) + centre  # integer shift: a plain move copies exactly
        if np.all(source >= lo - 1e-9) and np.all(source <= hi + 1e-9) \
                and np.hypot(*(source - centre)) >= min_shift:
            return np.hstack([linear, (source - linear @ centre)[:, None]]), True
    angle = rng.uniform(0, 2 * np.pi)
    shift = np.rint(min_shift * np.array([np.cos(angle), np.sin(angle)]))
    return np.hstack([linear, (centre + shift - linear @ centre)[:, None]]), False


def copy_move(patch: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *,
              scale: Sequence[float] = DEFAULT_SCALE, max_rotation: float = DEFAULT_MAX_ROTATION,
              feather: int = DEFAULT_FEATHER) -> np.ndarray:
    """Copy-move: the masked region receives the patch's own content, shifted (maybe rescaled / rotated)."""
    check_pair(patch, mask, "copy_move")
    lo, hi = _check_range(scale, "copy_move: scale")
    if max_rotation < 0:
        raise ValueError(f"copy_move: max_rotation must be >= 0, got {max_rotation}")
    matrix, _ = _copy_move_map(mask, rng, (lo, hi), float(max_rotation))
    h, w = mask.shape
    moved = cv2.warpAffine(patch, matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REFLECT_101)
    return composite(patch, moved, feather_alpha(mask, _feather_width(rng, feather)))
