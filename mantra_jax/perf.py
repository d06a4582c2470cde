"""Performance measurement helpers shared by the benchmarks and ``mantra info``: XLA's cost analysis of a
compiled program, the machine's float32 matmul peak, best-of-n wall-clock timing and a synthetic photo."""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np


def cost_dict(compiled: Any) -> dict[str, float]:
    """The numeric entries of ``compiled.cost_analysis()`` (first module when it returns a list)."""
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return {k: float(v) for k, v in (cost or {}).items() if isinstance(v, (int, float))}


def compiled_flops(compiled: Any) -> float | None:
    """XLA's FLOP count of a compiled program, or None when the backend gives none."""
    return cost_dict(compiled).get("flops")


def best_time(fn: Callable[[], Any], repeats: int) -> float:
    """Best wall-clock seconds of ``repeats`` calls of ``fn`` (which must block until its result is ready)."""
    best = float("inf")
    for _ in range(max(int(repeats), 1)):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def dot_peak_gflops(n: int = 2048, dtype: Any = jnp.float32, repeats: int = 5) -> float:
    """GFLOP/s of a jitted (n, n) x (n, n) ``jnp.dot`` on the default device: the machine's practical peak."""
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), dtype)
    f = jax.jit(lambda x, y: x @ y)
    f(a, a).block_until_ready()
    return 2 * n ** 3 / best_time(lambda: f(a, a).block_until_ready(), repeats) / 1e9


def conv_flops(height: int, width: int, kernel: int, in_channels: int, out_channels: int) -> float:
    """FLOPs of a direct stride-1 k x k convolution with H x W outputs: 2 k^2 I O per output pixel (the
    count effective GFLOP/s use whatever algorithm computes it)."""
    return 2.0 * height * width * kernel * kernel * in_channels * out_channels


def synthetic_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A (height, width, 3) uint8 image: smooth random content (16 px blocks) plus N(0, 8) noise, closer to a
    photo than i.i.d. noise and cheap to make (the benchmarks' input)."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3)).astype(np.float32)
    out = np.empty((height, width, 3), np.uint8)
    for r0 in range(0, height, 256):  # in bands, so a large photo costs little more memory than its bytes
        r1 = min(r0 + 256, height)
        band = np.repeat(np.repeat(low[r0 // 16:(r1 - 1) // 16 + 1], 16, axis=0), 16, axis=1)
        band = band[r0 - 16 * (r0 // 16):r0 - 16 * (r0 // 16) + r1 - r0, :width]
        out[r0:r1] = np.clip(band + rng.normal(0, 8, band.shape).astype(np.float32), 0, 255)
    return out
