"""Window means that count only in-image pixels: ZPool2D's box statistics, from shared power-of-two window
sums (default) or from block-wise cumulative sums.

``window_mean(x, n)[b, i, j, c]`` is the mean of ``x[b, i', j', c]`` over the n x n window centred on
(i, j), counting only pixels inside the image: the average pool of the release that excludes padding.
``window_means(x, ns)`` gives the means for several windows at once, sharing their work.

Method. The 2-D mean is separable: a 1-D windowed mean along H, then along W. A 1-D window sum of n
samples is built by doubling: ``s_1 = x`` and ``s_2k(i) = s_k(i) + s_k(i + k)`` (the sum of 2k samples
from i), up to the largest power of two not above n; the window of n samples is then the sum of the
``s_p`` of the binary digits of n, placed end to end (n = 31: 1 + 2 + 4 + 8 + 16). Every window of a
call shares the ``s_p`` of the first pass (the H pass runs once for all of them), so the three windows
of the release cost 4 doublings and 10 adds per sample per pass instead of a scan each. The adds run
smallest part first, so every sum is at most ``floor(log2 n) + 1`` roundings deep, each relative to a
partial sum of the window: float32 rounding stays at the size of one window's sum (a float32 2-D
integral image over a whole 1024 x 1024 map is ~1e-3 off). The work per sample grows with log2 n only.
Counts of in-image pixels are computed analytically from iotas (an average pool over padding would make
XLA constant-fold a count image).

``method="cumsum"``: the cumulative-sum formulation (van Herk / Gil-Werman): along each axis the padded
samples are cut into blocks of n, and a window starting at i is the within-block suffix sum of block
``i // n`` plus the within-block prefix sum of the next block, both from ``lax.associative_scan`` over
only n samples (O(1) work per sample whatever n, rounding again at the size of one window's sum). It
gives the same means within float32 rounding. It is kept as the reference formulation, but it is not the
default: it runs the release's three windows slower and XLA compiles its gradient slower (measured:
README, Benchmarks).
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax


def _check_window(n: int) -> None:
    if n < 1 or n % 2 == 0:
        raise ValueError(f"window size must be a positive odd integer, got {n}")


def _window_sums_1d(x: jnp.ndarray, ns: Sequence[int], axis: int) -> list[jnp.ndarray]:
    """For each n in ``ns``: the sum over the n samples centred on each position along ``axis`` (zeros
    outside the array), same shape as ``x``."""
    axis = axis % x.ndim
    length = x.shape[axis]
    r_max = max(ns) // 2
    pads = [(0, 0)] * x.ndim
    pads[axis] = (r_max, r_max)
    powers = {1: jnp.pad(x, pads)}  # powers[p](i) = sum of p samples from padded position i
    p = 1
    while 2 * p <= max(ns):
        s = powers[p]
        size = s.shape[axis] - p
        powers[2 * p] = lax.slice_in_dim(s, 0, size, axis=axis) + lax.slice_in_dim(s, p, p + size, axis=axis)
        p *= 2
    sums = []
    for n in ns:
        start, acc = r_max - n // 2, None  # output 0's window starts at padded position r_max - n // 2
        for p in sorted(powers):
            if n & p:
                part = lax.slice_in_dim(powers[p], start, start + length, axis=axis)
                acc = part if acc is None else acc + part
                start += p
        sums.append(acc)
    return sums


def _window_sum_1d_cumsum(x: jnp.ndarray, n: int, axis: int) -> jnp.ndarray:
    """The centred n-window sum along ``axis`` (zeros outside) from block-wise cumulative sums."""
    axis = axis % x.ndim
    length = x.shape[axis]
    blocks = -(-(length + n) // n)  # ceil((L + n) / n): room for i + n with i up to L - 1
    total = blocks * n
    pads = [(0, 0)] * x.ndim
    pads[axis] = (n // 2, total - length - n // 2)
    xb = jnp.pad(x, pads).reshape(x.shape[:axis] + (blocks, n) + x.shape[axis + 1:])
    prefix = lax.associative_scan(jnp.add, xb, axis=axis + 1)
    suffix = lax.associative_scan(jnp.add, xb, axis=axis + 1, reverse=True)
    flat = x.shape[:axis] + (total,) + x.shape[axis + 1:]
    prefix_excl, suffix = (prefix - xb).reshape(flat), suffix.reshape(flat)
    # Window [i, i + n) in padded coordinates is output i: suffix(i) + prefix_excl(i + n).
    return lax.slice_in_dim(suffix, 0, length, axis=axis) + lax.slice_in_dim(prefix_excl, n, n + length, axis=axis)


METHODS = ("doubling", "cumsum")


def _in_image_count_1d(length: int, n: int, dtype) -> jnp.ndarray:
    """Number of in-image samples of the centred n-window at each of ``length`` positions."""
    r = n // 2
    i = jnp.arange(length)
    return (jnp.minimum(i + r, length - 1) - jnp.maximum(i - r, 0) + 1).astype(dtype)


def _means_1d(x: jnp.ndarray, ns: Sequence[int], axis: int, method: str = "doubling") -> list[jnp.ndarray]:
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    sums = (_window_sums_1d(x, ns, axis) if method == "doubling"
            else [_window_sum_1d_cumsum(x, n, axis) for n in ns])
    return [s / _in_image_count_1d(x.shape[axis], n, x.dtype).reshape(shape) for n, s in zip(ns, sums)]


def window_means(x: jnp.ndarray, ns: Sequence[int], method: str = "doubling") -> list[jnp.ndarray]:
    """Means over the n x n windows centred on each pixel for every n in ``ns``, counting only in-image
    pixels; the windows share the H pass.

    Args:
      x: (B, H, W, C) float array.
      ns: odd window sizes; may exceed H or W.
      method: "doubling" (shared power-of-two sums) or "cumsum" (block-wise cumulative sums); see above.
    Returns:
      A list of (B, H, W, C) arrays, one per window, same dtype as ``x``.
    """
    if x.ndim != 4:
        raise ValueError(f"window_mean expects (B, H, W, C), got shape {x.shape}")
    ns = tuple(int(n) for n in ns)
    for n in ns:
        _check_window(n)
    if method not in METHODS:
        raise ValueError(f"window-mean method must be one of {METHODS}, got {method!r}")
    return _window_means(x, ns, method) if ns else []


@partial(jax.jit, static_argnames=("ns", "method"))
def _window_means(x: jnp.ndarray, ns: tuple[int, ...], method: str) -> list[jnp.ndarray]:
    return [_means_1d(rows, (n,), 2, method)[0] for n, rows in zip(ns, _means_1d(x, ns, 1, method))]


def window_mean(x: jnp.ndarray, n: int, method: str = "doubling") -> jnp.ndarray:
    """Mean over the n x n window centred on each pixel, counting only in-image pixels.

    Args:
      x: (B, H, W, C) float array.
      n: odd window size; may exceed H or W.
      method: see ``window_means``.
    Returns:
      (B, H, W, C), same dtype as ``x``.
    """
    return window_means(x, (n,), method)[0]


def global_mean(x: jnp.ndarray) -> jnp.ndarray:
    """Mean over H and W of (B, H, W, C), computed row-wise first for accuracy; shape (B, 1, 1, C)."""
    if x.ndim != 4:
        raise ValueError(f"global_mean expects (B, H, W, C), got shape {x.shape}")
    return jnp.mean(jnp.mean(x, axis=2, keepdims=True), axis=1, keepdims=True)


def global_std(x: jnp.ndarray) -> jnp.ndarray:
    """Population standard deviation (ddof=0) over H and W, two-pass; shape (B, 1, 1, C)."""
    mu = global_mean(x)
    return jnp.sqrt(global_mean(jnp.square(x - mu)))
