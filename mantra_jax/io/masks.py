"""Ground-truth mask files: reading, binarising and fitting to the image size (the one mask reader).

Masks are binarised once, here, with one documented rule: the mask is converted to 8-bit gray (Pillow's
ITU-R 601-2 luma for colour, 16-bit scaled by 255/65535, 1-bit as 0/255, float in [0, 1] times 255) and a
pixel is forged when gray > 127 (``rule="bright"``, the usual 255 = forged), gray <= 127 (``"dark"``,
NIST's 0 = manipulated) or, for Columbia's colour-coded edge masks, green > red (``"green"``). A lossless
mask whose values are all in {0, 1} is read as a 0/1 label map (1 = forged for ``"bright"``) rather than as
all-black. A mask whose size differs from its image is resized with nearest neighbour (pixel centres, as
Pillow's NEAREST) and flagged, or skipped, or rejected, as asked.

A mask file meets the same limits as an image (``mantra_jax.io.images``): only a regular file of at most
``max_bytes`` is read, and its size is checked against ``max_pixels`` from the header before decoding.
Every problem is a ``MaskError`` (a ValueError) naming the file, in one line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
from PIL import Image

from mantra_jax.io.images import (DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageReadError, open_lazily,
                                  read_file_bytes)

LOSSY_EXTENSIONS = frozenset({".jpg", ".jpeg", ".webp"})

MaskRule = Literal["bright", "dark", "green"]
OnMismatch = Literal["resize", "skip", "error"]


class MaskError(ValueError):
    """A mask that cannot be used: missing, unreadable, out of limits, not a mask, or of the wrong size."""


class LoadedMask(NamedTuple):
    """A binarised mask. ``mask`` is bool (H, W) at the requested shape (None when skipped)."""

    mask: np.ndarray | None
    size_matches: bool
    source_shape: tuple[int, int]


def _gray_u8(img: Image.Image, path: Path) -> np.ndarray:
    """8-bit gray (H, W) of any Pillow mode; a lossless 0/1 label map becomes 0/255 (module docstring)."""
    mode = img.mode
    if mode == "1":
        return np.asarray(img, dtype=np.uint8) * np.uint8(255)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
            raise MaskError(f"mask {path}: float masks must lie in [0, 1]")
        return np.round(arr * 255.0).astype(np.uint8)
    if mode.startswith("I"):  # 16-bit PNG/TIFF ("I;16*") or 32-bit integers ("I")
        raw = np.asarray(img).astype(np.int64)
        if raw.min() < 0 or raw.max() > 65535:
            raise MaskError(f"mask {path}: integer values outside [0, 65535] are not a mask")
        high = raw.max() > 255 or mode != "I"
        gray = (raw * 255 + 32767) // 65535 if high and raw.max() > 1 else raw
        gray = gray.astype(np.uint8)
    else:
        gray = np.asarray(img if mode == "L" else img.convert("L"), dtype=np.uint8)
    if path.suffix.lower() not in LOSSY_EXTENSIONS and gray.size and gray.max() == 1:
        gray = gray * np.uint8(255)  # a 0/1 label map
    return gray


def read_mask(path: str | os.PathLike, rule: MaskRule = "bright", *, max_pixels: int = DEFAULT_MAX_PIXELS,
              max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """Reads and binarises a mask file. Returns bool (H, W), True = forged (rule: module docstring)."""
    path = Path(path)
    if rule not in ("bright", "dark", "green"):
        raise MaskError(f"unknown mask rule {rule!r}; use 'bright', 'dark' or 'green'")
    if not os.path.lexists(path):
        raise MaskError(f"mask {path} does not exist")
    try:
        img = open_lazily(read_file_bytes(path, max_bytes=max_bytes, what="mask"))
        if img is None:
            raise MaskError(f"mask {path} cannot be read: not an image format Pillow knows")
        with img:
            width, height = img.size
            if width * height > max_pixels:
                raise MaskError(f"mask {path}: {width}x{height} has {width * height} pixels, over the limit of "
                                f"{max_pixels}")
            img.load()
            if rule == "green":
                rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
                return rgb[..., 1] > rgb[..., 0]
            gray = _gray_u8(img, path)
    except MaskError:
        raise
    except ImageReadError as e:
        raise MaskError(f"mask {e}") from None
    except Exception as e:  # noqa: BLE001 - any decoder failure is one clear line naming the file
        text = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MaskError(f"mask {path} cannot be read: {text}") from None
    forged = gray > 127
    return forged if rule == "bright" else ~forged


def resize_nearest(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a (h, w) array to ``shape`` (H, W), sampling at pixel centres."""
    h, w = mask.shape
    out_h, out_w = shape
    rows = np.minimum(((np.arange(out_h) + 0.5) * h / out_h).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(out_w) + 0.5) * w / out_w).astype(np.int64), w - 1)
    return mask[rows[:, None], cols[None, :]]


def load_mask(path: str | os.PathLike, shape: tuple[int, int], *, rule: MaskRule = "bright",
              on_mismatch: OnMismatch = "resize", max_pixels: int = DEFAULT_MAX_PIXELS,
              max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedMask:
    """Binarised mask at the image's ``shape`` (H, W).

    On a size mismatch: ``"resize"`` (nearest neighbour, ``size_matches=False``), ``"skip"`` (``mask`` is
    None, ``size_matches=False``) or ``"error"`` (MaskError).
    """
    if len(shape) != 2 or min(shape) < 1:
        raise MaskError(f"shape must be (H, W) with positive sizes, got {shape}")
    if on_mismatch not in ("resize", "skip", "error"):
        raise MaskError(f"on_mismatch must be 'resize', 'skip' or 'error', got {on_mismatch!r}")
    mask = read_mask(path, rule, max_pixels=max_pixels, max_bytes=max_bytes)
    source_shape = (int(mask.shape[0]), int(mask.shape[1]))
    target = (int(shape[0]), int(shape[1]))
    if source_shape == target:
        return LoadedMask(mask, True, source_shape)
    if on_mismatch == "error":
        raise MaskError(f"mask {path} is {source_shape[0]}x{source_shape[1]} but its image is "
                         f"{target[0]}x{target[1]} (H x W)")
    if on_mismatch == "skip":
        return LoadedMask(None, False, source_shape)
    return LoadedMask(resize_nearest(mask, target), False, source_shape)


