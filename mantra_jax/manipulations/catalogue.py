"""The 385-type manipulation catalogue: the hierarchy's leaves joined with the family implementations.

CATALOGUE[i] is class i of the IMC-385 classifier (order and node ids: see hierarchy.py). Each entry is a
frozen `Manipulation` whose `apply(image, rng)` maps a uint8 RGB (H, W, 3) image to a new uint8 RGB image of the
same shape. Only the noise types draw from `rng` (a numpy Generator, required for them); the others ignore
it. Parameter meanings are documented in the family modules: blur, resize, compression, morphology, noise,
quantization, contrast.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mantra_jax.manipulations import (blur, compression, contrast, hierarchy, morphology, noise, quantization,
                                      resize)
from mantra_jax.manipulations._common import Builder, ImageFn, check_image, check_rng

BUILDERS: dict[str, Builder] = {}
for _module in (blur, resize, compression, morphology, noise, quantization, contrast):
    BUILDERS.update(_module.BUILDERS)


@dataclasses.dataclass(frozen=True)
class Manipulation:
    """One manipulation type.

    index: class id 0..384. name: e.g. 'BoxBlur-K29' (the hierarchy's names; 'Sharpen-A0.5' for additions).
    family: the hierarchy's family column (the algorithm, e.g. 'BoxBlur'). parameter: its token ('K29', ''
    for Dithering). group: the level-1 family name ('blur', ..., 'contrast'). levels: node ids (remapped,
    0-based) at hierarchy levels 1..6, coarse to fine; levels[-1] == index. uses_rng: whether apply draws
    random numbers.
    """

    index: int
    name: str
    family: str
    parameter: str
    group: str
    levels: tuple[int, ...]
    uses_rng: bool
    fn: ImageFn = dataclasses.field(repr=False, compare=False)

    def apply(self, image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """image (H, W, 3) uint8 RGB -> new (H, W, 3) uint8 RGB; `rng` is required iff uses_rng."""
        check_image(image, f"{self.name}: image")
        if self.uses_rng:
            check_rng(rng, self.name)
        elif rng is not None and not isinstance(rng, np.random.Generator):
            raise ValueError(
                f"{self.name}: rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
        out = self.fn(image, rng)
        if out.shape != image.shape or out.dtype != np.uint8:  # an internal error, never expected
            raise RuntimeError(f"{self.name} returned {out.shape} {out.dtype} for {image.shape} uint8")
        return out

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return self.apply(image, rng)


def build_catalogue() -> tuple[Manipulation, ...]:
    """Builds the 385 entries from hierarchy.leaves(); raises ValueError for an unknown family."""
    all_leaves = hierarchy.leaves()
    per_level = [hierarchy.level_ids(level) for level in range(1, hierarchy.NUM_LEVELS + 1)]
    entries = []
    for index, leaf in enumerate(all_leaves):
        if leaf.family not in BUILDERS:
            raise ValueError(f"no implementation for hierarchy family {leaf.family!r} (leaf {leaf.name})")
        entries.append(
            Manipulation(
                index=index,
                name=leaf.name,
                family=leaf.family,
                parameter=leaf.parameter,
                group=hierarchy.GROUP_NAMES[leaf.path[0] - 1],
                levels=tuple(int(ids[index]) for ids in per_level),
                uses_rng=leaf.family in noise.RANDOM_FAMILIES,
                fn=BUILDERS[leaf.family](leaf.parameter),
            )
        )
    return tuple(entries)


CATALOGUE: tuple[Manipulation, ...] = build_catalogue()
NAMES: tuple[str, ...] = tuple(m.name for m in CATALOGUE)
_BY_NAME: dict[str, Manipulation] = {m.name: m for m in CATALOGUE}


def by_name(name: str) -> Manipulation:
    """The catalogue entry called `name`; raises ValueError for an unknown name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown manipulation {name!r}; see mantra_jax.manipulations.NAMES") from None
