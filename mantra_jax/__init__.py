"""mantra_jax: ManTra-Net (Wu, AbdAlmageed, Natarajan, CVPR 2019) in JAX/Flax.

The public surface is imported lazily so that light sub-packages (the manipulation catalogue, the data
sources) do not pay for importing JAX and Flax.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_keras_weights": "mantra_jax.io.keras_h5",
    "load_pretrained": "mantra_jax.io.pretrained",
    "preprocess": "mantra_jax.io.images",
    "ManTraNet": "mantra_jax.models.mantranet",
    "variants": "mantra_jax.models.variants",
    "ANOMALY_FEATURES": "mantra_jax.ops.anomaly",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mantra_jax' has no attribute {name!r}")


__all__ = sorted(_LAZY) + ["__version__"]
