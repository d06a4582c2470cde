"""Pristine 256x256 patches cut from photos, homogeneous ones rejected, cached in memory.

Tiling: each photo is cut into a non-overlapping grid of ``size`` x ``size`` patches, ``H // size`` rows by
``W // size`` columns, centred (the ``H % size`` and ``W % size`` leftover pixels are split evenly between
the two borders). Photos with a side shorter than ``size`` give no patch. The grid is deterministic, so
the patch bank of a photo set is reproducible.

Homogeneity (paper: "rejecting patches with high homogeneity, i.e. intensity deviation < 32"): patches
whose deviation is below ``min_deviation`` (default 32) are rejected. The deviation is measured on the gray
intensity gray = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601, float64, in [0, 255]) as

* ``measure="std"`` (default): its population standard deviation over the patch;
* ``measure="range"``: max - min over the patch.

The paper does not say which. Its count (1.25M patches from Dresden, about 74 per photo, i.e. most of a
photo's 50-150 grid patches) fits ``range`` better: on the 16 Dresden photos in ../shared/data, std >= 32
keeps 30 % of the grid patches and max - min >= 32 keeps 83 %. But max - min also keeps near-black
patches with a few bright pixels (retina's corners), so ``std`` is the default.

A ``PatchBank`` holds the kept patches of one split as one uint8 array (N, size, size, 3), with each
patch's source photo and grid origin.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from mantra_jax.data.photos import PhotoRef, PhotoSpec, load_photo_or_none, resolve_photos, select_split
from mantra_jax.data.splits import DEFAULT_RATIOS, check_split
from mantra_jax.io.images import DEFAULT_MAX_PIXELS

logger = logging.getLogger(__name__)

PATCH_SIZE = 256
MIN_DEVIATION = 32.0
MEASURES = ("std", "range")
DEFAULT_MEASURE = "std"
_LUMA = np.array([0.299, 0.587, 0.114], np.float64)


def grid_origins(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """Top-left (y, x) corners of the centred non-overlapping ``size`` grid of an H x W image, row-major."""
    if size < 1:
        raise ValueError(f"patch size must be positive, got {size}")
    rows, cols = height // size, width // size
    y0, x0 = (height - rows * size) // 2, (width - cols * size) // 2
    return [(y0 + r * size, x0 + c * size) for r in range(rows) for c in range(cols)]


def check_measure(measure: str) -> str:
    if measure not in MEASURES:
        raise ValueError(f"deviation measure must be one of {MEASURES}, got {measure!r}")
    return measure


def patch_deviation(patch: np.ndarray, measure: str = DEFAULT_MEASURE) -> float:
    """Deviation of the BT.601 gray intensity of an (H, W, 3) uint8 RGB patch: population std or max - min."""
    if patch.dtype != np.uint8 or patch.ndim != 3 or patch.shape[2] != 3:
        raise ValueError(f"patch must be (H, W, 3) uint8, got {patch.dtype} {patch.shape}")
    gray = patch.astype(np.float64) @ _LUMA
    return float(gray.std()) if check_measure(measure) == "std" else float(gray.max() - gray.min())


def is_homogeneous(patch: np.ndarray, min_deviation: float = MIN_DEVIATION, measure: str = DEFAULT_MEASURE) -> bool:
    """Whether a patch is rejected: its gray-intensity deviation is below ``min_deviation``."""
    return patch_deviation(patch, measure) < min_deviation


def cut_patches(image: np.ndarray, size: int = PATCH_SIZE, min_deviation: float = MIN_DEVIATION,
                measure: str = DEFAULT_MEASURE) -> tuple[np.ndarray, np.ndarray]:
    """The kept grid patches of one photo.

    Args:
      image: (H, W, 3) uint8 RGB.
    Returns:
      patches (N, size, size, 3) uint8 and their origins (N, 2) int32 (y, x), N >= 0.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.dtype} {image.shape}")
    kept, origins = [], []
    for y, x in grid_origins(image.shape[0], image.shape[1], size):
        patch = image[y:y + size, x:x + size]
        if not is_homogeneous(patch, min_deviation, measure):
            kept.append(patch)
            origins.append((y, x))
    if not kept:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0, 2), np.int32)
    return np.stack(kept), np.asarray(origins, np.int32)


@dataclasses.dataclass(frozen=True, eq=False)
class PatchBank:
    """The kept patches of one split, in memory.

    patches: (N, S, S, 3) uint8. photo_ids: (N,) int32 index into ``keys``. origins: (N, 2) int32 (y, x)
    in the source photo. keys: the source photos' keys (those that gave at least one patch). split: the
    split the photos were selected for.
    """

    patches: np.ndarray
    photo_ids: np.ndarray
    origins: np.ndarray
    keys: tuple[str, ...]
    split: str

    def __post_init__(self):
        n = self.patches.shape[0]
        if self.patches.dtype != np.uint8 or self.patches.ndim != 4 or self.patches.shape[3] != 3 \
                or self.patches.shape[1] != self.patches.shape[2]:
            raise ValueError(f"patches must be (N, S, S, 3) uint8, got {self.patches.dtype} {self.patches.shape}")
        if self.photo_ids.shape != (n,) or self.origins.shape != (n, 2):
            raise ValueError(f"photo_ids {self.photo_ids.shape} / origins {self.origins.shape} do not match "
                             f"{n} patches")
        if n and (self.photo_ids.min() < 0 or self.photo_ids.max() >= len(self.keys)):
            raise ValueError("photo_ids index outside keys")

    def __len__(self) -> int:
        return int(self.patches.shape[0])

    @property
    def size(self) -> int:
        return int(self.patches.shape[1])

    @classmethod
    def of(cls, photos: "PhotoSpec | PatchBank", split: str, **build_kwargs) -> "PatchBank":
        """``photos`` itself when it is a bank (of ``split``; another split raises ValueError), else
        ``build(photos, split, **build_kwargs)``."""
        if isinstance(photos, PatchBank):
            if photos.split != split:
                raise ValueError(f"patch bank was built for split {photos.split!r}, not {split!r}")
            return photos
        return cls.build(photos, split, **build_kwargs)

    @classmethod
    def build(cls, photos: PhotoSpec, split: str, *, size: int = PATCH_SIZE, min_deviation: float = MIN_DEVIATION,
              measure: str = DEFAULT_MEASURE, ratios: Sequence[int] = DEFAULT_RATIOS,
              max_pixels: int = DEFAULT_MAX_PIXELS) -> "PatchBank":
        """Cuts the patches of the photos of ``split`` (a folder, PhotoRefs, or None for scikit-image's).

        Unreadable photos are logged and skipped. Raises ValueError when no patch survives.
        """
        check_split(split)
        check_measure(measure)
        refs: list[PhotoRef] = select_split(resolve_photos(photos), split, ratios)
        chunks, ids, origins, keys = [], [], [], []
        for ref in refs:
            image = load_photo_or_none(ref, max_pixels=max_pixels)
            if image is None:
                continue
            patches, where = cut_patches(image, size, min_deviation, measure)
            if len(patches):
                ids.append(np.full(len(patches), len(keys), np.int32))
                keys.append(ref.key)
                chunks.append(patches)
                origins.append(where)
        if not chunks:
            raise ValueError(f"no {size}x{size} patch with {measure} deviation >= {min_deviation} in the {len(refs)} "
                             f"photo(s) of split {split!r}")
        bank = cls(np.concatenate(chunks), np.concatenate(ids), np.concatenate(origins), tuple(keys), split)
        logger.info("patch bank %s: %d patches from %d of %d photos", split, len(bank), len(keys), len(refs))
        return bank
