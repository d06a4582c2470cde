"""Per-type cost of the manipulation catalogue (for the data-pipeline cost table)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from mantra_jax.manipulations._common import check_image
from mantra_jax.manipulations.catalogue import CATALOGUE, Manipulation


def time_types(image: np.ndarray, repeats: int = 5, manipulations: Sequence[Manipulation] | None = None,
               seed: int = 0) -> list[tuple[str, float]]:
    """Median wall-clock seconds of one `apply` per manipulation type, in catalogue order.

    image: (H, W, 3) uint8 RGB. Each type runs once untimed (warm-up), then `repeats` >= 1 timed calls with a
    Generator seeded by `seed`. `manipulations` defaults to the whole CATALOGUE.
    Returns [(name, seconds), ...].
    """
    check_image(image)
    if not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"time_types: repeats must be a positive integer, got {repeats!r}")
    entries = CATALOGUE if manipulations is None else tuple(manipulations)
    rng = np.random.default_rng(seed)
    table = []
    for manipulation in entries:
        manipulation.apply(image, rng)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            manipulation.apply(image, rng)
            times.append(time.perf_counter() - start)
        table.append((manipulation.name, float(np.median(times))))
    return table
