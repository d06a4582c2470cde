"""Random-access source of image-manipulation-classification (IMC) samples.

Paper: "(1) selecting a random patch P and a random manipulation y, both uniformly, (2) applying y to P,
(3) cropping a random 128x128 region of y(P)". Record ``i`` draws, in this order and all from
``record_rng(seed, i)``: the patch index, the class (uniform over the catalogue), the manipulation's own
randomness, then the crop corner. A record is thus a pure function of ``(seed, i)`` and of the patch bank,
whatever process or worker computes it.

``len(source)`` is the number of records (``num_records``), a pool of distinct samples, not a count of
patches: by default ``len(bank) * num_classes``, i.e. each (patch, type) pair once on average.

The catalogue is looked up lazily (``mantra_jax.manipulations.CATALOGUE`` unless one is passed), so the
source pickles cheaply into grain worker processes: it carries the patch bank and the parameters only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mantra_jax.data.patches import DEFAULT_MEASURE, MIN_DEVIATION, PATCH_SIZE, PatchBank
from mantra_jax.data.photos import PhotoSpec
from mantra_jax.data.rng import check_seed, record_rng

CROP_SIZE = 128


def default_catalogue() -> Sequence[Any]:
    """The project's 385-type catalogue (imported on first use)."""
    from mantra_jax.manipulations import CATALOGUE

    return CATALOGUE


def check_index(index: int, length: int) -> int:
    """``index`` as an int in [0, length), raising IndexError otherwise (negative indices are rejected)."""
    i = int(index)
    if i != index or not 0 <= i < length:
        raise IndexError(f"record index {index!r} out of range [0, {length})")
    return i


class IMCSource:
    """IMC samples: ``source[i] -> {"image": (crop, crop, 3) uint8 RGB, "label": int32 class}``.

    Args:
      photos: a PatchBank (already built for ``split``), a photo folder, a sequence of PhotoRef, or None
        for the scikit-image fallback photos.
      split: 'train', 'validation' or 'test'.
      seed: non-negative integer; record i is a pure function of (seed, i).
      num_records: pool size; default ``len(bank) * len(catalogue)``.
      crop_size: side of the random crop of the manipulated patch.
      patch_size, min_deviation, measure: patch bank settings when it is built here (see patches.py).
      catalogue: sequence of manipulations (``.apply(image, rng)``); default the project's CATALOGUE.
    """

    def __init__(self, photos: PhotoSpec | PatchBank, split: str, *, seed: int = 0, num_records: int | None = None,
                 crop_size: int = CROP_SIZE, patch_size: int = PATCH_SIZE, min_deviation: float = MIN_DEVIATION,
                 measure: str = DEFAULT_MEASURE, catalogue: Sequence[Any] | None = None):
        bank = PatchBank.of(photos, split, size=patch_size, min_deviation=min_deviation, measure=measure)
        if not 1 <= crop_size <= bank.size:
            raise ValueError(f"crop_size must be in [1, {bank.size}], got {crop_size}")
        self.bank = bank
        self.split = split
        self.seed = check_seed(seed)
        self.crop_size = int(crop_size)
        self._catalogue = None if catalogue is None else tuple(catalogue)
        self.num_classes = len(self.catalogue)
        if self.num_classes < 1:
            raise ValueError("catalogue is empty")
        self.num_records = len(bank) * self.num_classes if num_records is None else int(num_records)
        if self.num_records < 1:
            raise ValueError(f"num_records must be positive, got {num_records}")

    @property
    def catalogue(self) -> Sequence[Any]:
        return default_catalogue() if self._catalogue is None else self._catalogue

    def __len__(self) -> int:
        return self.num_records

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        i = check_index(index, self.num_records)
        rng = record_rng(self.seed, i)
        patch = self.bank.patches[int(rng.integers(len(self.bank)))]
        label = int(rng.integers(self.num_classes))
        manipulated = self.catalogue[label].apply(patch, rng)
        c = self.crop_size
        y, x = (int(v) for v in rng.integers(0, self.bank.size - c + 1, size=2))
        return {"image": np.ascontiguousarray(manipulated[y:y + c, x:x + c]), "label": np.int32(label)}

    def __repr__(self) -> str:
        return (f"IMCSource(split={self.split!r}, patches={len(self.bank)}, classes={self.num_classes}, "
                f"records={self.num_records}, seed={self.seed}, crop={self.crop_size})")
