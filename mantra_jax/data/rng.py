"""Per-record random generators: record ``i`` of a source is a pure function of ``(seed, i)``.

Random-access sources draw everything for record ``i`` from ``Generator(PCG64(SeedSequence([seed, i])))``,
so a sample never depends on which process computes it, in which order, or how many workers there are.
"""

from __future__ import annotations

import numbers

import numpy as np


def check_seed(seed: int, what: str = "seed") -> int:
    """Returns ``seed`` as a Python int, raising ValueError unless it is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {seed!r}")
    return int(seed)


def record_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of record ``index`` under ``seed`` (both non-negative integers)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([check_seed(seed),
                                                                       check_seed(index, "index")])))
