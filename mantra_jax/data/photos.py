"""Pristine photo sources: any folder of photos (recursive), or scikit-image's bundled colour photos.

A ``PhotoRef`` names a photo without decoding it, so a split can be chosen from keys alone and large
collections are decoded one photo at a time. Its ``key`` (path relative to the folder, POSIX separators,
or ``skimage/<name>``) is the photo's identity for the stable split (splits.py).

``find_photos(folder)`` lists files with an image suffix (case-insensitive, hidden files and folders
skipped) in sorted order; files that then fail to decode are reported through ``logging`` and skipped by
``load_photo_or_none``. ``skimage_photos()`` is the fallback used when no folder is given, so that a fresh
machine can run the training job: the nine colour photographs shipped inside scikit-image that load
offline. Nine photos are too few for a hashed 8:1:1 split to fill every split, so they carry a fixed split
(7 train, 1 validation, 1 test) that overrides the hash; with 256x256 patches
and the deviation threshold of 32 they give 17 / 2 / 1 patches (rocket gives none: its patches are too
flat).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
from collections.abc import Sequence
from typing import Union

import numpy as np

from mantra_jax.data.splits import DEFAULT_RATIOS, check_split, split_of
from mantra_jax.io.images import DEFAULT_MAX_PIXELS, ImageReadError, read_image

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm",
                            ".pnm", ".gif", ".jp2", ".pfm", ".hdr"})

# scikit-image colour photographs that ship with the wheel (no download), with their fixed split.
SKIMAGE_PHOTOS: dict[str, str] = {
    "astronaut": "train",
    "chelsea": "test",
    "coffee": "validation",
    "rocket": "train",
    "motorcycle_left": "train",
    "motorcycle_right": "train",
    "hubble_deep_field": "train",
    "immunohistochemistry": "train",
    "retina": "train",
}

PhotoSpec = Union[str, os.PathLike, Sequence["PhotoRef"], None]


@dataclasses.dataclass(frozen=True)
class PhotoRef:
    """A photo, not yet decoded.

    key: stable identity (relative POSIX path, or 'skimage/<name>'). path: the file, or None for a
    scikit-image photo. split: a fixed split overriding the hash, or None.
    """

    key: str
    path: str | None = None
    split: str | None = None

    def load(self, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_size: int = 1) -> np.ndarray:
        """The photo as (H, W, 3) uint8 RGB. Raises ImageReadError when it cannot be decoded."""
        if self.path is not None:
            return read_image(self.path, max_pixels=max_pixels, min_size=min_size)
        return _load_skimage(self.key)

    def split_of(self, ratios: Sequence[int] = DEFAULT_RATIOS) -> str:
        return self.split if self.split is not None else split_of(self.key, ratios)


def _load_skimage(key: str) -> np.ndarray:
    prefix, _, name = key.partition("/")
    if prefix != "skimage" or name not in SKIMAGE_PHOTOS:
        raise ValueError(f"unknown built-in photo {key!r}; known: {sorted(SKIMAGE_PHOTOS)}")
    import skimage.data  # Local import: only the fallback needs scikit-image.

    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        image = left if name == "motorcycle_left" else right
    else:
        image = getattr(skimage.data, name)()
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageReadError(f"{key}: expected a uint8 RGB photo, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def skimage_photos() -> list[PhotoRef]:
    """The built-in fallback photos (scikit-image's colour photographs), with their fixed splits."""
    return [PhotoRef(key=f"skimage/{name}", split=split) for name, split in SKIMAGE_PHOTOS.items()]


def find_photos(folder: str | os.PathLike) -> list[PhotoRef]:
    """Image files under ``folder`` (recursive, sorted by key). Raises ValueError if it is not a folder."""
    root = pathlib.Path(folder)
    if not root.is_dir():
        raise ValueError(f"photo folder {os.fspath(folder)!r} does not exist or is not a folder")
    refs = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.is_file():
            refs.append(PhotoRef(key=rel.as_posix(), path=os.fspath(path)))
    return sorted(refs, key=lambda r: r.key)


def resolve_photos(photos: PhotoSpec) -> list[PhotoRef]:
    """A folder path -> its photos; a sequence of PhotoRef -> itself; None -> the scikit-image photos."""
    if photos is None:
        return skimage_photos()
    if isinstance(photos, (str, os.PathLike)):
        return find_photos(photos)
    refs = list(photos)
    if not all(isinstance(r, PhotoRef) for r in refs):
        raise ValueError("photos must be a folder, a sequence of PhotoRef, or None")
    return refs


def select_split(refs: Sequence[PhotoRef], split: str, ratios: Sequence[int] = DEFAULT_RATIOS) -> list[PhotoRef]:
    """The photos of one split (fixed split if the photo has one, else the key's hash)."""
    check_split(split)
    return [r for r in refs if r.split_of(ratios) == split]


def load_photo_or_none(ref: PhotoRef, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray | None:
    """The decoded photo, or None after logging a warning when it cannot be read (bad files are skipped)."""
    try:
        return ref.load(max_pixels=max_pixels)
    except (ImageReadError, OSError) as err:
        logger.warning("skipping unreadable photo: %s", err)
        return None
