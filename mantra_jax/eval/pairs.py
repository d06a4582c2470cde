"""Benchmark pairing (image -> ground-truth mask or none).

Three listing formats give the same result, a list of ``Pair(image, mask)`` with ``mask=None`` for an
authentic image:

* a CSV with a header holding ``image,mask`` (other columns ignored; an empty mask cell = authentic), or
  the COVERAGE conversion's ``tampered,original,mask`` (each row: tampered -> mask, original -> None);
* IMDL-BenCo style folders: ``Tp/`` tampered images, ``Gt/`` masks paired by file stem (a mask stem may
  carry a suffix such as ``_gt`` or ``_mask``), optional ``Au/`` authentic images;
* an IMDL-BenCo JSON list ``[[image, mask], ...]`` where the mask ``"Negative"`` means authentic.

Relative paths are resolved against the folder of the CSV/JSON file. Files are checked to exist.
Folders are listed with ``mantra_jax.io.images.list_images`` (its ``IMAGE_EXTENSIONS``, the same list as
``mantra detect DIR``). Masks are read and binarised by ``mantra_jax.io.masks`` (re-exported here: the
rule, resizing and limits are documented there).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Literal

import numpy as np
from mantra_jax.io import images as _images
from mantra_jax.io.images import read_image
from mantra_jax.io.masks import MaskRule, OnMismatch, load_mask

# Suffixes a mask's stem may add to its image's stem (compared case-insensitively).
MASK_STEM_SUFFIXES = ("_gt", "-gt", "_mask", "-mask", "_groundtruth", "_edgemask")
NEGATIVE = "Negative"  # IMDL-BenCo's marker for an authentic image in JSON lists


class PairsError(ValueError):
    """Bad pair listing: missing files, wrong columns, ambiguous pairing (a bad mask is a ``MaskError``)."""


@dataclasses.dataclass(frozen=True)
class LoadedPair:
    """A pair ready to score: ``image`` uint8 (H, W, 3), ``mask`` bool (H, W) at the image's size (None:
    authentic), whether the released mask had the image's size, and ``skip`` ('' or why it is left out)."""

    image: np.ndarray
    mask: np.ndarray | None
    size_matches: bool = True
    skip: str = ""


@dataclasses.dataclass(frozen=True)
class Pair:
    """One benchmark image and its ground-truth mask (None = authentic image), as files.

    What ``mantra_jax.eval.runner`` asks of a pair (a prepared benchmark's examples answer the same:
    ``mantra_jax.datasets.benchmarks.StoredPair``): ``image`` / ``mask`` (the names shown, mask None when
    authentic), ``key`` (its identity in a progress log) and ``load``."""

    image: Path
    mask: Path | None

    @property
    def authentic(self) -> bool:
        return self.mask is None

    @property
    def key(self) -> str:
        """The identity of the pair in a progress log: absolute image and mask paths."""
        mask = "" if self.mask is None else os.path.abspath(self.mask)
        return f"{os.path.abspath(self.image)}\t{mask}"

    def load(self, *, rule: MaskRule, on_mismatch: OnMismatch, max_pixels: int, max_bytes: int) -> LoadedPair:
        """Reads the image (``read_image``) and its mask binarised at the image's size (``load_mask``);
        ``on_mismatch="skip"`` gives a ``skip`` reason for a mis-sized mask. Raises ValueError."""
        image = read_image(self.image, max_pixels=max_pixels, max_bytes=max_bytes)
        if self.mask is None:
            return LoadedPair(image, None)
        loaded = load_mask(self.mask, image.shape[:2], rule=rule, on_mismatch=on_mismatch,
                           max_pixels=max_pixels, max_bytes=max_bytes)
        if loaded.mask is None:
            return LoadedPair(image, None, False, f"mask {self.mask} is {loaded.source_shape[0]}x"
                              f"{loaded.source_shape[1]}, image is {image.shape[0]}x{image.shape[1]} (H x W)")
        return LoadedPair(image, loaded.mask, loaded.size_matches)


def _resolve(base: Path, value: str) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else base / path


def _check_exist(pairs: list[Pair], source: Path) -> None:
    missing = [p for pair in pairs for p in (pair.image, pair.mask) if p is not None and not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3])
        raise PairsError(f"{len(missing)} file(s) listed in {source} do not exist, e.g. {shown}")


def _check_unique(pairs: list[Pair], source: Path) -> None:
    seen: set[Path] = set()
    for pair in pairs:
        if pair.image in seen:
            raise PairsError(f"image {pair.image} is listed twice in {source}")
        seen.add(pair.image)


def read_pairs_csv(path: str | os.PathLike, *, check_exists: bool = True) -> list[Pair]:
    """Pairs from a CSV with columns ``image,mask`` (or COVERAGE's ``tampered,original,mask``)."""
    path = Path(path)
    if not path.is_file():
        raise PairsError(f"pairs CSV {path} does not exist")
    base = path.parent
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        reader.fieldnames = columns
        rows = list(reader)
    pairs: list[Pair] = []
    if {"image", "mask"} <= set(columns):
        for line, row in enumerate(rows, start=2):
            image = (row["image"] or "").strip()
            mask = (row["mask"] or "").strip()
            if not image:
                raise PairsError(f"{path}:{line}: empty 'image' cell")
            pairs.append(Pair(_resolve(base, image), _resolve(base, mask) if mask else None))
    elif {"tampered", "original", "mask"} <= set(columns):
        for line, row in enumerate(rows, start=2):
            tampered = (row["tampered"] or "").strip()
            mask = (row["mask"] or "").strip()
            original = (row["original"] or "").strip()
            if not tampered or not mask:
                raise PairsError(f"{path}:{line}: a tampered/original/mask row needs 'tampered' and 'mask'")
            pairs.append(Pair(_resolve(base, tampered), _resolve(base, mask)))
            if original:
                pairs.append(Pair(_resolve(base, original), None))
    else:
        raise PairsError(f"{path} needs a header with columns 'image,mask' (or 'tampered,original,mask'); "
                         f"found {columns}")
    _check_unique(pairs, path)
    if check_exists:
        _check_exist(pairs, path)
    return pairs


def read_pairs_json(path: str | os.PathLike, *, check_exists: bool = True) -> list[Pair]:
    """Pairs from an IMDL-BenCo JSON list ``[[image, mask_or_"Negative"], ...]``."""
    path = Path(path)
    if not path.is_file():
        raise PairsError(f"pairs JSON {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PairsError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, list):
        raise PairsError(f"{path} must hold a JSON list of [image, mask] entries, got {type(data).__name__}")
    pairs: list[Pair] = []
    for i, entry in enumerate(data):
        if (not isinstance(entry, (list, tuple)) or len(entry) != 2
                or not all(isinstance(v, str) and v for v in entry)):
            raise PairsError(f"{path}: entry {i} must be [image, mask or \"{NEGATIVE}\"], got {entry!r}")
        image, mask = entry
        authentic = mask.strip().lower() == NEGATIVE.lower()
        pairs.append(Pair(_resolve(path.parent, image), None if authentic else _resolve(path.parent, mask)))
    _check_unique(pairs, path)
    if check_exists:
        _check_exist(pairs, path)
    return pairs


def list_images(folder: Path, *, recursive: bool = True) -> list[Path]:
    """Image files (``IMAGE_EXTENSIONS``, case-insensitive) under ``folder``, sorted; hidden files skipped."""
    return _images.list_images(folder, recursive=recursive)


def mask_key(stem: str) -> str:
    """The image stem a mask stem refers to: lower-cased, one known suffix (``_gt``, ...) removed."""
    key = stem.lower()
    for suffix in MASK_STEM_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)]
    return key


def match_masks(images: list[Path], masks: list[Path], *, missing_mask: Literal["error", "skip"] = "error",
                source: str = "") -> list[Pair]:
    """Pairs each image with the mask whose stem is the image's stem (optionally plus a known suffix).

    Raises PairsError for two masks claiming one image, or (``missing_mask="error"``) an image without
    a mask; with ``"skip"`` such images are left out and logged. Unused masks are logged.
    """
    by_key: dict[str, Path] = {}
    for m in masks:
        key = mask_key(m.stem)
        if key in by_key:
            raise PairsError(f"{source}: masks {by_key[key]} and {m} both match image stem {key!r}")
        by_key[key] = m
    pairs, unmatched = [], []
    used: set[str] = set()
    for image in images:
        key = image.stem.lower()
        if key not in by_key:
            unmatched.append(image)
            continue
        if key in used:
            raise PairsError(f"{source}: two images share the stem {key!r} (e.g. {image})")
        used.add(key)
        pairs.append(Pair(image, by_key[key]))
    if unmatched:
        if missing_mask == "error":
            raise PairsError(f"{source}: {len(unmatched)} tampered image(s) have no mask, "
                             f"e.g. {unmatched[0]}")
        logging.warning("%s: %d tampered image(s) without a mask left out, e.g. %s", source, len(unmatched),
                        unmatched[0])
    if len(used) < len(by_key):
        logging.warning("%s: %d mask(s) match no image", source, len(by_key) - len(used))
    return pairs


def pairs_from_folders(root: str | os.PathLike, *, tampered_dir: str = "Tp", mask_dir: str = "Gt",
                       authentic_dir: str = "Au",
                       missing_mask: Literal["error", "skip"] = "error") -> list[Pair]:
    """Pairs from IMDL-BenCo style folders ``root/Tp`` + ``root/Gt`` (+ ``root/Au`` when present)."""
    root = Path(root)
    tp, gt, au = root / tampered_dir, root / mask_dir, root / authentic_dir
    for folder in (tp, gt):
        if not folder.is_dir():
            raise PairsError(f"{root} must contain folders {tampered_dir}/ and {mask_dir}/ "
                             f"({folder} is missing)")
    pairs = match_masks(list_images(tp), list_images(gt), missing_mask=missing_mask, source=str(root))
    if au.is_dir():
        pairs += [Pair(p, None) for p in list_images(au)]
    if not pairs:
        raise PairsError(f"no images found under {root}")
    return pairs


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """uint8 RGB (H, W, 3) of an image, by ``mantra_jax.io.images.read_image`` (EXIF orientation applied;
    raises its ``ImageReadError``, a ValueError, with a one-line message)."""
    return read_image(path)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image from its header, without decoding the pixels (orientation tags ignored).

    The file gets ``read_image``'s checks first (a regular file within the byte limit)."""
    try:
        with _images.open_regular_file(path, what="image") as f:
            return _images.image_header_size(f, os.fspath(path))
    except _images.ImageReadError as e:
        raise PairsError(f"image {e}") from None
