"""Stable train / validation / test split by source photo (paper: 8:1:1 by image id).

A photo's split depends only on its key (its path relative to the photo folder, POSIX separators): the
first 8 bytes of ``sha256(key)`` as a big-endian integer, modulo the sum of the ratios, pick a bucket;
buckets ``[0, 8)`` are train, ``8`` validation, ``9`` test for the default 8:1:1. Adding or removing other
photos never moves a photo to another split, and all patches of one photo stay in one split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

SPLITS = ("train", "validation", "test")
DEFAULT_RATIOS = (8, 1, 1)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def split_bucket(key: str, buckets: int) -> int:
    """The bucket in ``[0, buckets)`` of a photo key (sha256 of its UTF-8 bytes)."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"photo key must be a non-empty string, got {key!r}")
    if buckets < 1:
        raise ValueError(f"buckets must be positive, got {buckets}")
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % buckets


def split_of(key: str, ratios: Sequence[int] = DEFAULT_RATIOS) -> str:
    """The split ('train', 'validation' or 'test') of a photo key under integer ``ratios`` (train, val, test)."""
    if len(ratios) != 3 or any(int(r) != r or r < 0 for r in ratios) or sum(ratios) < 1:
        raise ValueError(f"ratios must be three non-negative integers with a positive sum, got {tuple(ratios)}")
    bucket = split_bucket(key, int(sum(ratios)))
    if bucket < ratios[0]:
        return "train"
    return "validation" if bucket < ratios[0] + ratios[1] else "test"
