"""Window means that count only in-image pixels, from block-wise cumulative sums.

``window_mean(x, n)[b, i, j, c]`` is the mean of ``x[b, i', j', c]`` over the n x n window centred on
(i, j), counting only pixels inside the image: the average pool of the release that excludes padding.

Method. The 2-D mean is separable: a 1-D windowed mean along H, then along W. Each 1-D windowed sum uses
blocks of length n (the van Herk / Gil-Werman decomposition): any window of n samples starting at i spans
the tail of block ``i // n`` and the head of the next one, so its sum is a within-block suffix sum plus a
within-block prefix sum. Both come from cumulative sums over only n samples, so float32 rounding stays at
the size of one window's sum (a float32 2-D integral image over a whole 1024 x 1024 map is ~1e-3 off), and
the work per sample is independent of n (the within-block scans use ``lax.associative_scan``: O(1) work per
sample, O(log n) depth). Counts of in-image pixels are computed analytically from iotas
(an average pool over padding would make XLA constant-fold a count image).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


def _window_sum_1d(x: jnp.ndarray, n: int, axis: int) -> jnp.ndarray:
    """Sum over the n samples centred on each position along ``axis`` (zeros outside)."""
    axis = axis % x.ndim
    length = x.shape[axis]
    r = n // 2
    blocks = -(-(length + n) // n)  # ceil((L + n) / n): room for i + n with i up to L - 1
    total = blocks * n
    pads = [(0, 0)] * x.ndim
    pads[axis] = (r, total - length - r)
    xb = jnp.pad(x, pads).reshape(x.shape[:axis] + (blocks, n) + x.shape[axis + 1:])
    inner = axis + 1
    # associative_scan does O(n) work per block whatever n (XLA's CPU cumsum costs O(sqrt n) per sample).
    prefix_incl = jax.lax.associative_scan(jnp.add, xb, axis=inner)
    suffix_incl = jax.lax.associative_scan(jnp.add, xb, axis=inner, reverse=True)
    flat = x.shape[:axis] + (total,) + x.shape[axis + 1:]
    prefix_excl = (prefix_incl - xb).reshape(flat)
    suffix_incl = suffix_incl.reshape(flat)
    # Window [i, i + n) in padded coordinates is output i; its sum = suffix(i) + prefix_excl(i + n).
    head = jax.lax.slice_in_dim(suffix_incl, 0, length, axis=axis)
    tail = jax.lax.slice_in_dim(prefix_excl, n, n + length, axis=axis)
    return head + tail


def _in_image_count_1d(length: int, n: int, dtype) -> jnp.ndarray:
    """Number of in-image samples of the centred n-window at each of ``length`` positions."""
    r = n // 2
    i = jnp.arange(length)
    return (jnp.minimum(i + r, length - 1) - jnp.maximum(i - r, 0) + 1).astype(dtype)


def window_mean_1d(x: jnp.ndarray, n: int, axis: int) -> jnp.ndarray:
    """Mean over the centred n-window along ``axis``, counting in-range samples only."""
    if n < 1 or n % 2 == 0:
        raise ValueError(f"window size must be a positive odd integer, got {n}")
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    count = _in_image_count_1d(x.shape[axis], n, x.dtype).reshape(shape)
    return _window_sum_1d(x, n, axis) / count


@partial(jax.jit, static_argnames=("n",))
def window_mean(x: jnp.ndarray, n: int) -> jnp.ndarray:
    """Mean over the n x n window centred on each pixel, counting only in-image pixels.

    Args:
      x: (B, H, W, C) float array.
      n: odd window size; may exceed H or W.
    Returns:
      (B, H, W, C), same dtype as ``x``.
    """
    if x.ndim != 4:
        raise ValueError(f"window_mean expects (B, H, W, C), got shape {x.shape}")
    return window_mean_1d(window_mean_1d(x, n, axis=1), n, axis=2)


def global_mean(x: jnp.ndarray) -> jnp.ndarray:
    """Mean over H and W of (B, H, W, C), computed row-wise first for accuracy; shape (B, 1, 1, C)."""
    if x.ndim != 4:
        raise ValueError(f"global_mean expects (B, H, W, C), got shape {x.shape}")
    return jnp.mean(jnp.mean(x, axis=2, keepdims=True), axis=1, keepdims=True)


def global_std(x: jnp.ndarray) -> jnp.ndarray:
    """Population standard deviation (ddof=0) over H and W, two-pass; shape (B, 1, 1, C)."""
    mu = global_mean(x)
    return jnp.sqrt(global_mean(jnp.square(x - mu)))
