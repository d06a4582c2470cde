"""Random-access source of synthetic forgeries for the local anomaly detection network (LADN).

Record ``i`` draws, all from ``record_rng(seed, i)`` and in this order: the forgery kind (weights ``mix``
over FORGERY_KINDS = splicing, copy_move, removal, enhancement), the host patch, a structured mask with
forged fraction in ``area`` (masks.py), then the kind's own randomness (donor patch from another photo when
the bank has one, manipulation class, inpainting method, feathering ...; see forgeries.py). It returns
``{"image": (S, S, 3) uint8, "mask": (S, S, 1) uint8 in {0, 1}, "kind": int32 index into FORGERY_KINDS}``.

``len(source)`` is the pool size, ``num_records``, by default ``100 * len(bank)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mantra_jax.data import forgeries
from mantra_jax.data.forgeries import FORGERY_KINDS
from mantra_jax.data.imc_source import check_index, default_catalogue
from mantra_jax.data.masks import DEFAULT_AREA, check_area, random_mask
from mantra_jax.data.patches import DEFAULT_MEASURE, MIN_DEVIATION, PATCH_SIZE, PatchBank
from mantra_jax.data.photos import PhotoSpec
from mantra_jax.data.rng import check_seed, record_rng

RECORDS_PER_PATCH = 100
_DONOR_TRIES = 16


def mix_probabilities(mix: Sequence[float] | Mapping[str, float]) -> np.ndarray:
    """Normalised probabilities (4,) float64 over FORGERY_KINDS from weights (sequence or kind -> weight)."""
    if isinstance(mix, Mapping):
        unknown = set(mix) - set(FORGERY_KINDS)
        if unknown:
            raise ValueError(f"unknown forgery kinds {sorted(unknown)}; known: {FORGERY_KINDS}")
        weights = [float(mix.get(kind, 0.0)) for kind in FORGERY_KINDS]
    else:
        weights = [float(w) for w in mix]
    if len(weights) != len(FORGERY_KINDS) or any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"mix must give {len(FORGERY_KINDS)} non-negative weights with a positive sum for "
                         f"{FORGERY_KINDS}, got {mix!r}")
    p = np.asarray(weights, np.float64)
    return p / p.sum()


class ForgerySource:
    """Forgeries: ``source[i] -> {"image": (S, S, 3) uint8, "mask": (S, S, 1) uint8, "kind": int32}``.

    Args:
      photos: a PatchBank built for ``split``, a photo folder, PhotoRefs, or None (scikit-image photos).
      split: 'train', 'validation' or 'test'.
      seed: non-negative integer; record i is a pure function of (seed, i).
      num_records: pool size; default ``100 * len(bank)``.
      mix: weights over FORGERY_KINDS (sequence of 4, or mapping kind -> weight; missing kinds get 0).
      area: forged-area fraction range (lo, hi).
      scale: splicing / copy-move rescaling range. feather: largest feather width (pixels).
      max_rotation: copy-move rotation bound (degrees). radius: inpainting radius range (pixels).
      patch_size, min_deviation, measure: patch bank settings when it is built here.
      catalogue: manipulations for enhancement; default the project's CATALOGUE.
    """

    def __init__(self, photos: PhotoSpec | PatchBank, split: str, *, seed: int = 0, num_records: int | None = None,
                 mix: Sequence[float] | Mapping[str, float] = (1.0, 1.0, 1.0, 1.0),
                 area: Sequence[float] = DEFAULT_AREA, scale: Sequence[float] = forgeries.DEFAULT_SCALE,
                 feather: int = forgeries.DEFAULT_FEATHER, max_rotation: float = forgeries.DEFAULT_MAX_ROTATION,
                 radius: Sequence[int] = forgeries.DEFAULT_RADIUS, patch_size: int = PATCH_SIZE,
                 min_deviation: float = MIN_DEVIATION,
                 measure: str = DEFAULT_MEASURE, catalogue: Sequence[Any] | None = None):
        bank = PatchBank.of(photos, split, size=patch_size, min_deviation=min_deviation, measure=measure)
        self.bank = bank
        self.split = split
        self.seed = check_seed(seed)
        self.probabilities = mix_probabilities(mix)
        self.area = check_area(area, bank.size, bank.size)
        self.scale = (float(scale[0]), float(scale[1]))
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale must be a positive (lo, hi) pair with lo <= hi, got {tuple(scale)}")
        if int(feather) != feather or feather < 0:
            raise ValueError(f"feather must be a non-negative integer, got {feather}")
        self.feather = int(feather)
        if max_rotation < 0:
            raise ValueError(f"max_rotation must be >= 0, got {max_rotation}")
        self.max_rotation = float(max_rotation)
        self.radius = (int(radius[0]), int(radius[1]))
        if not 1 <= self.radius[0] <= self.radius[1]:
            raise ValueError(f"radius must be a (lo, hi) pair with 1 <= lo <= hi, got {tuple(radius)}")
        self._catalogue = None if catalogue is None else tuple(catalogue)
        self.num_records = RECORDS_PER_PATCH * len(bank) if num_records is None else int(num_records)
        if self.num_records < 1:
            raise ValueError(f"num_records must be positive, got {num_records}")

    @property
    def catalogue(self) -> Sequence[Any]:
        return default_catalogue() if self._catalogue is None else self._catalogue

    def __len__(self) -> int:
        return self.num_records

    def _donor(self, host: int, rng: np.random.Generator) -> np.ndarray:
        """A patch from another photo than the host's when the bank has one (else another patch, or itself)."""
        donor = host
        for _ in range(_DONOR_TRIES):
            donor = int(rng.integers(len(self.bank)))
            if self.bank.photo_ids[donor] != self.bank.photo_ids[host]:
                break
        return self.bank.patches[donor]

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        i = check_index(index, self.num_records)
        rng = record_rng(self.seed, i)
        kind = int(rng.choice(len(FORGERY_KINDS), p=self.probabilities))
        host = int(rng.integers(len(self.bank)))
        patch = self.bank.patches[host]
        mask = random_mask(self.bank.size, self.bank.size, rng, area=self.area)
        name = FORGERY_KINDS[kind]
        if name == "splicing":
            image = forgeries.splice(patch, self._donor(host, rng), mask, rng, scale=self.scale, feather=self.feather)
        elif name == "copy_move":
            image = forgeries.copy_move(patch, mask, rng, scale=self.scale, max_rotation=self.max_rotation,
                                        feather=self.feather)
        elif name == "removal":
            image = forgeries.remove(patch, mask, rng, radius=self.radius)
        else:
            catalogue = self.catalogue
            manipulation = catalogue[int(rng.integers(len(catalogue)))]
            image = forgeries.enhance(patch, mask, manipulation.apply, rng)
        return {"image": image, "mask": mask[:, :, None], "kind": np.int32(kind)}

    def __repr__(self) -> str:
        return (f"ForgerySource(split={self.split!r}, patches={len(self.bank)}, records={self.num_records}, "
                f"seed={self.seed}, mix={np.round(self.probabilities, 3).tolist()}, area={self.area})")
