"""Training data: photo sources, patches and splits, IMC samples, forgery synthesis, the grain pipeline.

Photos -> ``PatchBank`` (256x256 grid patches, homogeneous ones rejected, split 8:1:1 by photo) ->
``IMCSource`` (manipulated 128x128 crops with their class) or ``ForgerySource`` (forged 256x256 patches
with their binary mask) -> ``make_loader`` (grain batches). Synthesis uses numpy and OpenCV only; the
pipeline (grain, which imports JAX) is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from mantra_jax.data.forgeries import FORGERY_KINDS, copy_move, enhance, remove, splice
from mantra_jax.data.forgery_source import ForgerySource
from mantra_jax.data.imc_source import IMCSource
from mantra_jax.data.masks import random_mask
from mantra_jax.data.patches import PatchBank, cut_patches, grid_origins, is_homogeneous, patch_deviation
from mantra_jax.data.photos import PhotoRef, find_photos, resolve_photos, select_split, skimage_photos
from mantra_jax.data.rng import record_rng
from mantra_jax.data.splits import SPLITS, split_of

_LAZY = {name: "mantra_jax.data.pipeline" for name in
         ("make_loader", "to_model_inputs")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mantra_jax.data' has no attribute {name!r}")


__all__ = sorted(["FORGERY_KINDS", "ForgerySource", "IMCSource", "PatchBank", "PhotoRef", "SPLITS", "copy_move",
                  "cut_patches", "enhance", "find_photos", "grid_origins", "is_homogeneous", "patch_deviation",
                  "random_mask", "record_rng", "remove", "resolve_photos", "select_split", "skimage_photos",
                  "splice", "split_of", *_LAZY])
