"""Shared test fixtures: paths to ../shared (skipped cleanly when absent) and float64 settings."""

from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# The CLI turns JAX's persistent compilation cache on by default; tests must not write the user's cache.
os.environ.setdefault("MANTRA_COMPILE_CACHE", "off")


def shared_dir() -> pathlib.Path:
    """The shared folder: $MANTRA_SHARED, else ../shared beside the checkout."""
    return pathlib.Path(os.environ.get("MANTRA_SHARED", REPO.parent / "shared"))


def reference_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("MANTRA_REFERENCE", shared_dir() / "reference"))


@pytest.fixture
def reference_path():
    """Returns a function name -> path inside the reference folder, skipping when it is missing."""

    def get(name: str) -> pathlib.Path:
        path = reference_dir() / name
        if not path.exists():
            pytest.skip(f"reference file {path} is absent (set MANTRA_REFERENCE or provide ../shared)")
        return path

    return get


@pytest.fixture
def shared_data():
    """Returns a function relpath -> path inside ../shared/data, skipping when it is missing."""

    def get(rel: str) -> pathlib.Path:
        path = shared_dir() / "data" / rel
        if not path.exists():
            pytest.skip(f"shared data {path} is absent (set MANTRA_SHARED or provide ../shared)")
        return path

    return get


def enable_x64():
    """Context manager enabling float64 in JAX (``jax.enable_x64`` on new JAX, the experimental one before)."""
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64 as legacy  # JAX < 0.7

    return legacy()
