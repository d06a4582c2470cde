"""Batch normalisation without offset or scale (the release's ``bnorm``), as pure functions."""

from __future__ import annotations

import jax.numpy as jnp


def batch_moments(x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Per-channel mean and biased variance over all but the last axis, two-pass. Shapes (C,)."""
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axis=axes)
    var = jnp.mean(jnp.square(x - mean), axis=axes)
    return mean, var


def normalize(x: jnp.ndarray, mean: jnp.ndarray, var: jnp.ndarray, eps: float) -> jnp.ndarray:
    """``(x - mean) / sqrt(var + eps)`` with (C,) statistics broadcast over the last axis."""
    return (x - mean) * (1.0 / jnp.sqrt(var + eps))


def ema_update(moving: jnp.ndarray, batch: jnp.ndarray, momentum: float) -> jnp.ndarray:
    """Keras moving-statistics update: ``momentum * moving + (1 - momentum) * batch``."""
    return momentum * moving + (1.0 - momentum) * batch
