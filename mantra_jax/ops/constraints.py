"""Post-update projections of the release's constrained weights.

The release applies these after every optimiser update (Keras kernel constraints), never inside the
forward pass; weights stored in a release file already satisfy them.

* Bayar: per (input channel, output filter) k x k slice, zero the centre, divide by the slice's signed sum
  plus 1e-7, then set the centre to -1. The centre is -1 and the other taps sum to 1: a prediction-error
  filter.
* Unit norm: every output filter (the last axis) has unit L2 norm, ``w / (1e-7 + ||w||)``.
* Non-negative: ``max(w, 0)``.
"""

from __future__ import annotations

import jax.numpy as jnp

BAYAR_EPS = 1e-7
UNIT_NORM_EPS = 1e-7


def bayar_project(kernel: jnp.ndarray) -> jnp.ndarray:
    """Projects a (k, k, in, out) kernel, k odd, onto the Bayar constraint."""
    if kernel.ndim != 4 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"bayar_project expects a (k, k, in, out) kernel with odd k, got {kernel.shape}")
    k = kernel.shape[0]
    centre = jnp.zeros((k, k, 1, 1), kernel.dtype).at[k // 2, k // 2].set(1)
    off = kernel * (1 - centre)
    off = off / (jnp.sum(off, axis=(0, 1), keepdims=True) + BAYAR_EPS)
    return off - centre


def unit_norm_project(kernel: jnp.ndarray) -> jnp.ndarray:
    """Scales every output filter (last axis) of ``kernel`` to unit L2 norm over all other axes."""
    axes = tuple(range(kernel.ndim - 1))
    norm = jnp.sqrt(jnp.sum(jnp.square(kernel), axis=axes, keepdims=True))
    return kernel / (UNIT_NORM_EPS + norm)


def non_negative_project(x: jnp.ndarray) -> jnp.ndarray:
    """Clips ``x`` to be non-negative."""
    return jnp.maximum(x, 0)
