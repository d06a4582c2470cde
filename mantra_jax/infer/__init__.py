"""mantra_jax.infer: whole-image (``predict``) and exact tiled (``predict_tiled``) inference.

Imported lazily, so ``import mantra_jax.infer`` does not import JAX until a function is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "predict": "mantra_jax.infer.whole",
    "compiled_cost": "mantra_jax.infer.whole",
    "predict_tiled": "mantra_jax.infer.tiled",
    "predict_auto": "mantra_jax.infer.tiled",
    "bnorm_statistics": "mantra_jax.infer.tiled",
    "receptive_halo": "mantra_jax.infer.halo",
    "tiled_flops": "mantra_jax.infer.tiled",
    "DEFAULT_TILE": "mantra_jax.infer.tiled",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mantra_jax.infer' has no attribute {name!r}")


__all__ = sorted(_LAZY)
