"""Fixtures shared by the data tests: small patch banks built once per session."""

from __future__ import annotations

import numpy as np
import pytest

from mantra_jax.data.patches import PatchBank


@pytest.fixture(scope="session")
def skimage_train_bank() -> PatchBank:
    """The train patch bank of the scikit-image fallback photos (17 patches of 256x256)."""
    return PatchBank.build(None, "train")


def synthetic_bank(n: int = 6, size: int = 64, photos: int = 3, seed: int = 0) -> PatchBank:
    """A bank of ``n`` textured random patches from ``photos`` fake photos (split 'train')."""
    rng = np.random.default_rng(seed)
    patches = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return PatchBank(patches, np.arange(n, dtype=np.int32) % photos, np.zeros((n, 2), np.int32),
                     tuple(f"p{i}.png" for i in range(photos)), "train")
