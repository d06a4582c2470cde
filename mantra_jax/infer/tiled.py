"""Exact tiled inference: the whole-image probability map of a large photo with memory bounded by the tile.

Why it can be exact. Every layer but one is local:

* the feature extractor is a stack of symmetric-padded convolutions (one 5x5, then 3x3s): a pixel's
  ``featex`` depends on the input within ``F = 2 + #3x3 convs`` pixels (14 for the release trunk), and the
  symmetric padding happens only at the image border;
* ``outlierTrans`` (1x1) and ``bnorm`` (moving statistics in inference) are per pixel;
* the window means count in-image pixels, so a window mean at q depends on ``bnorm`` within
  ``r = max(windows) // 2`` of q, and the count of a window that lies inside a region equals the
  whole-image count;
* the ConvLSTM runs T steps of 7x7 zero-'same' convolutions (input and recurrent, h0 = 0): h_T at q
  depends on the anomaly features within ``3 T`` of q; the 7x7 ``pred`` convolution adds 3;

and the one global quantity, the per-channel mean and standard deviation of ``bnorm`` over the whole image,
is computed in a first pass and handed to the network (``global_stats``).

Pass 1 (statistics): for each core tile, run the network up to ``bnorm`` on the core extended by F (XLA
drops everything after ``bnorm``: the jitted function returns only sums of it), and accumulate per-channel
sums and centred sums of squares over the core pixels in float64 on the host (the parallel-variance
combination of Chan et al.).

Pass 2 (map): for each core tile, run the whole network on the core extended by
``halo = F + r + 3 T + 3`` (``lstm_kernel // 2 * T + pred_kernel // 2`` in general) with the pass-1
statistics, and keep the core. A core pixel p is exact when, on every side where the region stops inside
the image, the region reaches at least ``halo`` beyond p: then p's ConvLSTM/pred cone (3T + 3) never reads
the zero padding at the region border, each window mean in that cone (r) sees exactly the in-image pixels
of its window, and each ``featex`` under those windows (F) never reads the region's symmetric padding.
Where the region stops at the image border, the region computes exactly what the whole image does.

Bounded shapes. Along an axis of length L, a region is ``R = tile + 2 halo`` long, shifted inward at the
image border (``start = clip(core_start - halo, 0, L - R)``) rather than clipped, so every region of an
image larger than R has the same shape; the core sits at a varying offset inside it and is cropped on the
host. Hence each pass compiles at most once per (min(H, R), min(W, R)): once for all images larger than
R in both sides. An axis no longer than R is one core spanning the whole axis; an image that fits one
region is simply run whole (``mantra_jax.infer.whole.predict``).

Peak memory is that of one region (plus the H x W float32 output); the feature extractor is run twice
(pass 1 on (tile + 2F)^2, pass 2 on (tile + 2 halo)^2 per tile), about 2.5x the whole-image compute at
tile 512 for the release model.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mantra_jax.infer.whole import Variables, check_image, check_model, pred_fn, predict
from mantra_jax.io.images import preprocess
from mantra_jax.models.ladn import AnomalyDetector, ladn_reach
from mantra_jax.models.mantranet import ManTraNet

DEFAULT_TILE = 512
Progress = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class Halo:
    """Receptive radii in pixels: ``featex`` (feature extractor), ``window`` (largest window radius),
    ``recurrent`` (ConvLSTM over T steps plus the pred convolution). ``total`` is pass 2's halo."""

    featex: int
    window: int
    recurrent: int
    steps: int

    @property
    def total(self) -> int:
        return self.featex + self.window + self.recurrent


@functools.lru_cache(maxsize=None)
def receptive_halo(model: ManTraNet) -> Halo:
    """The halo of ``model`` (see the module docstring).

    T is read from the anomaly feature's output shape; the feature is assumed to read ``bnorm`` within the
    largest window at most (true of every registered feature; ``df`` and ``zf`` read less, so their halo is
    merely larger than needed).
    """
    check_model(model)
    featex = 2 + sum(len(block) for block in model.trunk) + 1  # b1c1 5x5, trunk 3x3s, transform 3x3
    x = jnp.zeros((1, 8, 8, 3), jnp.float32)
    out = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), x)[0])
    steps = int(out["features"].shape[1])
    window = ladn_reach(model)  # the anomaly feature's declared reach
    recurrent = AnomalyDetector.lstm_kernel // 2 * steps + AnomalyDetector.pred_kernel // 2
    return Halo(featex=featex, window=window, recurrent=recurrent, steps=steps)


class Span(NamedTuple):
    """One tile along an axis: core [core0, core1) inside region [reg0, reg1)."""

    core0: int
    core1: int
    reg0: int
    reg1: int


def axis_plan(length: int, tile: int, halo: int) -> list[Span]:
    """Cores of ``tile`` pixels covering [0, length) once, each with its region (module docstring).

    An axis no longer than ``tile + 2 halo`` is a single core spanning it; otherwise every region has
    length ``tile + 2 halo`` and reaches at least ``halo`` beyond its core wherever it stops inside the axis.
    """
    if length < 1 or tile < 1 or halo < 0:
        raise ValueError(f"axis_plan needs length >= 1, tile >= 1, halo >= 0; got {length}, {tile}, {halo}")
    region = tile + 2 * halo
    if length <= region:
        return [Span(0, length, 0, length)]
    spans = []
    for core0 in range(0, length, tile):
        core1 = min(core0 + tile, length)
        reg0 = min(max(core0 - halo, 0), length - region)
        spans.append(Span(core0, core1, reg0, reg0 + region))
    return spans


def plan(height: int, width: int, tile: int, halo: int) -> list[tuple[Span, Span]]:
    """Row-major (rows, cols) spans of a height x width image."""
    rows, cols = axis_plan(height, tile, halo), axis_plan(width, tile, halo)
    return [(r, c) for r in rows for c in cols]


@functools.lru_cache(maxsize=None)
def bnorm_sums_fn(model: ManTraNet) -> Callable[..., tuple[jax.Array, jax.Array, jax.Array]]:
    """Jitted ``(variables, x (1, h, w, 3), row_w (h,), col_w (w,)) -> (shift (C,), sums (h, C), sq (h, C))``.

    With the 0/1 core weights ``w = row_w x col_w``: ``shift`` is the core mean of ``bnorm`` (float32),
    ``sums[i] = sum_j w_ij b_ij`` and ``sq[i] = sum_j w_ij (b_ij - shift)^2`` (row sums: short float32
    reductions, finished in float64 on the host). Only ``bnorm`` is computed (XLA removes the rest).
    """

    def f(variables: Variables, x: jax.Array, row_w: jax.Array, col_w: jax.Array):
        b = model.apply(variables, x)["bnorm"][0]  # (h, w, C)
        w = (row_w[:, None] * col_w[None, :])[..., None]
        n = jnp.sum(row_w) * jnp.sum(col_w)
        sums = jnp.sum(w * b, axis=1)
        shift = jnp.sum(sums, axis=0) / n
        sq = jnp.sum(w * jnp.square(b - shift), axis=1)
        return shift, sums, sq

    return jax.jit(f)


def bnorm_statistics(model: ManTraNet, variables: Variables, image: np.ndarray, tile: int = DEFAULT_TILE,
                     progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Whole-image per-channel mean and population std of ``bnorm``, tile by tile (pass 1).

    Args:
      image: (H, W, 3) uint8 RGB. tile: core size. progress: called as ``progress(done, total)``.
    Returns:
      (mean, std), each float32 (1, 1, 1, C), as the network's ``global_mean`` / ``global_std`` would give
      on the whole image (up to float32 rounding).
    """
    check_model(model)
    img = check_image(image)
    h, w = img.shape[:2]
    spans = plan(h, w, tile, receptive_halo(model).featex)
    fn = bnorm_sums_fn(model)
    total_n = 0
    total_s: np.ndarray | None = None
    parts: list[tuple[int, np.ndarray, np.ndarray]] = []  # (n, tile mean, tile M2), float64
    for k, (rs, cs) in enumerate(spans):
        x = jnp.asarray(preprocess(img[rs.reg0:rs.reg1, cs.reg0:cs.reg1])[None])
        row_w = np.zeros(rs.reg1 - rs.reg0, np.float32)
        row_w[rs.core0 - rs.reg0:rs.core1 - rs.reg0] = 1.0
        col_w = np.zeros(cs.reg1 - cs.reg0, np.float32)
        col_w[cs.core0 - cs.reg0:cs.core1 - cs.reg0] = 1.0
        shift, sums, sq = (np.asarray(a, np.float64) for a in fn(variables, x, row_w, col_w))
        n = (rs.core1 - rs.core0) * (cs.core1 - cs.core0)
        s = sums.sum(axis=0)
        m = s / n
        m2 = sq.sum(axis=0) - n * np.square(m - shift)  # centre the sum of squares on the exact tile mean
        parts.append((n, m, np.maximum(m2, 0.0)))
        total_n += n
        total_s = s if total_s is None else total_s + s
        if progress is not None:
            progress(k + 1, len(spans))
    assert total_s is not None
    mean = total_s / total_n
    m2 = sum(p_m2 + n * np.square(p_m - mean) for n, p_m, p_m2 in parts)
    std = np.sqrt(m2 / total_n)
    shape = (1, 1, 1, mean.shape[0])
    return mean.reshape(shape).astype(np.float32), std.reshape(shape).astype(np.float32)


def predict_tiled(model: ManTraNet, variables: Variables, image: np.ndarray, tile: int = DEFAULT_TILE,
                  progress: Progress | None = None, *, halo: int | None = None) -> np.ndarray:
    """Tiled forgery probability map, equal to ``predict`` (whole image) up to float32 rounding.

    Args:
      model, variables: a ManTraNet and its variables.
      image: (H, W, 3) uint8 RGB.
      tile: core tile size in pixels (regions are tile + 2 * halo wide; see ``receptive_halo``).
      progress: optional ``progress(done, total)`` over both passes' tiles.
      halo: pass 2's halo; default (and the smallest exact value) ``receptive_halo(model).total``. Smaller
        values are for studies of the border effect only.
    Returns:
      (H, W) float32 probabilities.
    """
    check_model(model)
    img = check_image(image)
    if not isinstance(tile, (int, np.integer)) or tile < 1:
        raise ValueError(f"tile must be a positive integer, got {tile!r}")
    h, w = img.shape[:2]
    radii = receptive_halo(model)
    spans = plan(h, w, int(tile), radii.total if halo is None else int(halo))
    if len(spans) == 1:  # the image fits one region: that is whole-image inference
        out = predict(model, variables, img)
        if progress is not None:
            progress(1, 1)
        return out
    n1 = len(plan(h, w, int(tile), radii.featex))
    total = n1 + len(spans)
    report = None if progress is None else (lambda done, _: progress(done, total))
    mean, std = bnorm_statistics(model, variables, img, int(tile), report)
    mean_j, std_j = jnp.asarray(mean), jnp.asarray(std)
    fn = pred_fn(model)
    out = np.empty((h, w), np.float32)
    for k, (rs, cs) in enumerate(spans):
        x = jnp.asarray(preprocess(img[rs.reg0:rs.reg1, cs.reg0:cs.reg1])[None])
        p = np.asarray(fn(variables, x, mean_j, std_j))
        out[rs.core0:rs.core1, cs.core0:cs.core1] = p[rs.core0 - rs.reg0:rs.core1 - rs.reg0,
                                                      cs.core0 - cs.reg0:cs.core1 - cs.reg0]
        if progress is not None:
            progress(n1 + k + 1, total)
    return out


def predict_auto(model: ManTraNet, variables: Variables, image: np.ndarray, *, tile: int | None = None,
                 auto_tile_pixels: int = 1 << 20, progress: Progress | None = None) -> tuple[np.ndarray, bool]:
    """Whole-image inference, or tiled when ``tile`` is given or the image has more than ``auto_tile_pixels``
    pixels (then with ``DEFAULT_TILE``). Returns ``(map (H, W) float32, tiled)``."""
    img = check_image(image)
    if tile is None and img.shape[0] * img.shape[1] <= auto_tile_pixels:
        return predict(model, variables, img), False
    return predict_tiled(model, variables, img, DEFAULT_TILE if tile is None else tile, progress), True


def compile_count(model: ManTraNet) -> int:
    """Executables compiled so far for ``model`` by both tiled passes and whole-image inference."""
    return int(pred_fn(model)._cache_size() + bnorm_sums_fn(model)._cache_size())  # noqa: SLF001


__all__ = ["DEFAULT_TILE", "Halo", "Span", "axis_plan", "bnorm_statistics", "compile_count", "plan",
           "predict_auto", "predict_tiled", "receptive_halo"]
