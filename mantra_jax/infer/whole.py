"""Whole-image inference: one uint8 RGB photo -> one float32 probability map of the same size.

``predict`` runs the network once on the whole image (batch 1) through a jitted function that returns only
``pred``, so XLA drops the other intermediates. The jitted function is cached per model (Linen modules are
hashable dataclasses) and takes the variables as an argument, so weights are never baked into the
executable; it compiles once per distinct image shape (ahead of time, timed into
``mantra_jax.compile_cache.STATS``, and loaded from JAX's persistent cache when the ``mantra`` command has
it on). For images too large to hold the feature maps at
once, use ``mantra_jax.infer.tiled.predict_tiled``, which gives the same map within float32 rounding.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mantra_jax.compile_cache import ShapeCompiled
from mantra_jax.io.images import preprocess
from mantra_jax.models.compute import for_platform
from mantra_jax.models.mantranet import ManTraNet

Variables = Any


def check_model(model: Any) -> ManTraNet:
    """Raises ValueError unless ``model`` is a ManTra-Net (not, e.g., the IMC classifier)."""
    if not isinstance(model, ManTraNet):
        raise ValueError(f"inference needs a ManTraNet (detection model), got {type(model).__name__}")
    return model


def check_image(image: Any) -> np.ndarray:
    """Returns ``image`` as a (H, W, 3) uint8 array, or raises ValueError."""
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) < 1:
        raise ValueError(f"expected a uint8 RGB image of shape (H, W, 3), got {a.dtype} {a.shape}")
    return a


@functools.lru_cache(maxsize=None)
def pred_fn(model: ManTraNet) -> ShapeCompiled:
    """Compiled ``(variables, x (1, H, W, 3), mean, std) -> pred (H, W)``; mean/std (1, 1, 1, C) or None.

    With ``mean = std = None`` the network uses the input's own global statistics (whole-image inference);
    with arrays it uses them instead (exact tiled inference supplies the whole image's).
    """

    model = for_platform(model, jax.default_backend())  # its compute policy, for where it runs

    def f(variables: Variables, x: jax.Array, mean: jax.Array | None, std: jax.Array | None) -> jax.Array:
        stats = None if mean is None else (mean, std)
        return model.apply(variables, x, global_stats=stats)["pred"][0, :, :, 0]

    return ShapeCompiled(jax.jit(f))


def predict(model: ManTraNet, variables: Variables, image: np.ndarray) -> np.ndarray:
    """Whole-image forgery probability map.

    Args:
      model: a ManTraNet (e.g. from ``mantra_jax.io.checkpoints.load_model``).
      variables: its ``{"params", "batch_stats"}``.
      image: (H, W, 3) uint8 RGB.
    Returns:
      (H, W) float32 probabilities in [0, 1].
    """
    check_model(model)
    img = check_image(image)
    x = jnp.asarray(preprocess(img)[None])
    return np.asarray(pred_fn(model)(variables, x, None, None), dtype=np.float32)


def compiled_cost(model: ManTraNet, variables: Variables, height: int, width: int) -> dict[str, float]:
    """XLA's cost analysis of the compiled whole-image forward at (height, width): ``flops``, ...

    Lowers and compiles without running; the result is the first (only) module's cost dictionary.
    """
    check_model(model)
    x = jax.ShapeDtypeStruct((1, height, width, 3), jnp.float32)
    from mantra_jax.perf import cost_dict

    return cost_dict(pred_fn(model).jitted.lower(variables, x, None, None).compile())
