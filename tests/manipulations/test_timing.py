"""time_types: one (name, seconds) row per type, in order."""

from __future__ import annotations

import numpy as np
import pytest

from mantra_jax.manipulations import CATALOGUE, time_types


def test_time_types_returns_a_row_per_type():
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    subset = CATALOGUE[::100]
    table = time_types(image, repeats=2, manipulations=subset)
    assert [name for name, _ in table] == [m.name for m in subset]
    assert all(isinstance(s, float) and 0 < s < 1 for _, s in table)


def test_time_types_rejects_bad_arguments():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="repeats"):
        time_types(image, repeats=0)
    with pytest.raises(ValueError, match="dtype"):
        time_types(image.astype(np.float32))
