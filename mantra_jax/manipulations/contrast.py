"""Contrast / enhancement family (hierarchy L1 node 7): AutoContrast C0..C7, HistEq C1..C7, and our five
sharpening additions Sharpen-A{0.5, 1.0, 1.5, 2.0, 2.5}.

Parameter meanings (the hierarchy figure gives only the letters, so these are our definitions):
- AutoContrast-Cc (c = 0..7): per-channel linear stretch with clipping, in the manner of PIL's
  ImageOps.autocontrast: a fraction p = (c + 1) / 2 percent of each channel's pixels is saturated at each end
  (0.5 % for C0 ... 4 % for C7) and the remaining range [lo, hi] is mapped linearly onto [0, 255].
  (A cutoff of 0 would leave a full-range image untouched, so C0 already clips 0.5 %.) A channel whose
  range collapses (hi <= lo) is left as it is.
- HistEq-Cc (c = 1..7): contrast-limited adaptive histogram equalisation (CLAHE, cv2.createCLAHE) with clip
  limit c, applied to the luma Y of BT.601 YCrCb (cv2.COLOR_RGB2YCrCb); the chroma is kept, so hue is roughly
  preserved. Larger c allows stronger local equalisation. Tiles are about 32 x 32 pixels (grid
  max(1, round(H / 32)) x max(1, round(W / 32)): OpenCV's default 8 x 8 grid on a 256 x 256 patch), so that a
  tile holds about 1024 pixels and OpenCV's integer clip count (c * pixels per tile / 256) stays distinct for
  every c; with a fixed 8 x 8 grid, small images would map neighbouring c to the same clip count.
- Sharpen-Aa (our addition, not in the hierarchy figure; the paper's 385 types include sharpening): unsharp
  masking out = x + a * (x - G(x)), with G a Gaussian blur of sigma 1 pixel (9 x 9 kernel, reflected border),
  per channel, for amount a in {0.5, 1.0, 1.5, 2.0, 2.5}.
Deterministic; the rng is ignored.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from mantra_jax.manipulations._common import Builder, check_image, ignore_rng, parse_number, to_uint8

AUTOCONTRAST_LEVELS: tuple[int, ...] = tuple(range(8))
HISTEQ_LEVELS: tuple[int, ...] = tuple(range(1, 8))
SHARPEN_AMOUNTS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5)
SHARPEN_SIGMA = 1.0
CLAHE_TILE_PIXELS = 32


def autocontrast_cutoff(level: int) -> float:
    """Percentage of pixels saturated at each end for AutoContrast-C<level>."""
    return 0.5 * (level + 1)


def stretch_bounds(channel: np.ndarray, cutoff_percent: float) -> tuple[int, int]:
    """(lo, hi) of a uint8 channel after discarding `cutoff_percent` % of its pixels at each end."""
    hist = np.bincount(channel.ravel(), minlength=256)
    cut = channel.size * cutoff_percent / 100.0
    lo = int(np.searchsorted(np.cumsum(hist), cut, side="right"))
    hi = 255 - int(np.searchsorted(np.cumsum(hist[::-1]), cut, side="right"))
    return lo, hi


def auto_contrast(image: np.ndarray, cutoff_percent: float) -> np.ndarray:
    """Per-channel clipped linear stretch. image (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    if not 0.0 <= cutoff_percent < 50.0:
        raise ValueError(f"auto_contrast: cutoff_percent must be in [0, 50), got {cutoff_percent!r}")
    values = np.arange(256, dtype=np.float64)
    luts = np.empty((3, 256), dtype=np.uint8)
    for ch in range(3):
        lo, hi = stretch_bounds(image[..., ch], cutoff_percent)
        if hi <= lo:
            luts[ch] = values.astype(np.uint8)
        else:
            luts[ch] = to_uint8((values - lo) * (255.0 / (hi - lo)))
    return luts[np.arange(3), image]


def clahe_grid(height: int, width: int) -> tuple[int, int]:
    """OpenCV tileGridSize (tiles across, tiles down) for tiles of about CLAHE_TILE_PIXELS pixels."""
    across = max(1, math.floor(width / CLAHE_TILE_PIXELS + 0.5))
    down = max(1, math.floor(height / CLAHE_TILE_PIXELS + 0.5))
    return across, down


def hist_eq(image: np.ndarray, clip_limit: float) -> np.ndarray:
    """CLAHE on the luma with `clip_limit` > 0 and ~32 px tiles. (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    if not clip_limit > 0:
        raise ValueError(f"hist_eq: clip_limit must be > 0, got {clip_limit!r}")
    ycrcb = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YCrCb)
    clahe = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=clahe_grid(*image.shape[:2]))
    ycrcb[..., 0] = clahe.apply(np.ascontiguousarray(ycrcb[..., 0]))
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)


def unsharp_mask(image: np.ndarray, amount: float, sigma: float = SHARPEN_SIGMA) -> np.ndarray:
    """x + amount * (x - GaussianBlur_sigma(x)). image (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    if not amount > 0 or not sigma > 0:
        raise ValueError(f"unsharp_mask: amount and sigma must be > 0, got {amount!r}, {sigma!r}")
    x = image.astype(np.float32)
    blurred = cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return to_uint8(x + np.float32(amount) * (x - blurred))


def sharpen_name(amount: float) -> str:
    """Catalogue name of the sharpening type with this amount, e.g. 'Sharpen-A0.5'."""
    return f"Sharpen-A{amount:.1f}"


def _build_autocontrast(token: str):
    level = int(parse_number(token, "C"))
    return ignore_rng(functools.partial(auto_contrast, cutoff_percent=autocontrast_cutoff(level)))


def _build_histeq(token: str):
    return ignore_rng(functools.partial(hist_eq, clip_limit=float(parse_number(token, "C"))))


def _build_sharpen(token: str):
    return ignore_rng(functools.partial(unsharp_mask, amount=float(parse_number(token, "A", float))))


BUILDERS: dict[str, Builder] = {
    "AutoContrast": _build_autocontrast,
    "HistEq": _build_histeq,
    "Sharpen": _build_sharpen,
}
