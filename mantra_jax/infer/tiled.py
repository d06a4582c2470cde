"""Exact tiled inference: the whole-image probability map of a large photo, at about the cost of one pass.

Why it can be exact. Every layer but one is local (``mantra_jax.infer.halo``: how far each reads), and the
one global quantity, the per-channel mean and standard deviation of ``bnorm`` over the whole image, needs
every pixel's ``bnorm`` before any map pixel can be computed. So two passes over tiles
(``mantra_jax.infer.plan``), each running one of the model's public stages (``model.apply(..., method=)``):

Pass 1 (adapted features, once): ``ManTraNet.adapt``. For each core tile, compute ``bnorm`` (the 64-channel
adapted features) on the core extended by the feature extractor's halo ``F``, keep the core's ``bnorm`` in
a ``FeatureStore`` (host memory, or an unlinked temporary file for large images) and accumulate per-channel
sums and centred sums of squares over the core in float64 on the host (the parallel-variance combination of
Chan et al.). A core pixel's ``bnorm`` is exact: its ``F`` cone never reads the region's symmetric padding
where the region stops inside the image.

Pass 2 (LADN remainder): ``ManTraNet.detect_from_adapted``. For each core tile, read the stored ``bnorm``
of the core extended by the LADN's halo ``L`` and run the rest of the LADN on it (window means, anomaly
feature, ConvLSTM, pred) with the pass-1 statistics; keep the core. A core pixel p is exact when, on every
side where the region stops inside the image, the region reaches at least ``L`` beyond p: then p's
ConvLSTM/pred cone never reads the zero padding at the region border for a feature it depends on, and each
window mean it depends on sees exactly the in-image pixels of its window.

Per-image normalisation (``bnorm_statistics="image"``: each image normalised by its own moments, which a tile
does not have): pass 1 stores ``outlierTrans`` (``ManTraNet.outlier_transform``) and its whole-image moments
(m, s); pass 2 normalises by them (``ManTraNet.normalize``), whose output has whole-image mean
(m - m) / r = 0 and std s / r, r = sqrt(s^2 + eps), before ``detect_from_adapted``.

Cost. The feature extractor (about 90% of the release model's FLOPs) runs once per pixel plus the ``F``
margins; only the small LADN remainder runs on the wider pass-2 margins. For a 4000 x 3000 photo at tile
512 the total is 1.17x the whole-image FLOPs for Ptrain4, 1.19x for Ptrain0 (XLA cost analysis,
``experiments/bench_tiled.py --flops_only``), against
about 2.5x when pass 2 re-ran the feature extractor.

Bounded shapes (``mantra_jax.infer.plan``). Along an axis longer than ``R = tile + 2 halo``, all regions
have one length from the ladder ``R, R - 32, R - 64, ...``; an image that fits one region in both passes is
simply run whole (``mantra_jax.infer.whole.predict``), at its own shape. With ``bounded=True`` short axes
use the ladder too, so each pass compiles at most ``(#ladder + foot)^2`` shapes whatever the image sizes
(``foot``: the lengths below the ladder's last value, at most ``2 halo + 32``, which are run whole along that
axis; an image below both passes' ladders is run whole), at the price of some overlap on small images
(``mantra eval``'s default; ``--no-bounded-shapes`` compiles one whole-image program per image size).

Peak memory is that of one region's network buffers plus the H x W float32 output; the stored features
(H x W x 64 float32) are in host memory only below ``feature_store.MEMORY_LIMIT_BYTES``, else on disk.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mantra_jax.compile_cache import ShapeCompiled
from mantra_jax.infer.feature_store import Backend, FeatureStore
from mantra_jax.infer.halo import receptive_halo
from mantra_jax.infer.plan import SHAPE_STEP, core_weights, crop_core, plan
from mantra_jax.infer.whole import Variables, check_image, check_model, pred_fn, predict
from mantra_jax.io.images import preprocess
from mantra_jax.models.compute import for_platform
from mantra_jax.models.ladn import AnomalyDetector
from mantra_jax.models.mantranet import ManTraNet, adapted_channels

DEFAULT_TILE = 512
Progress = Callable[[int, int], None]
BnormMoments = tuple[jax.Array, jax.Array] | None  # pass 2's bnorm moments (mean, var), each (C,): per-image only


def _per_image(model: ManTraNet) -> bool:
    """Whether ``model`` normalises each image by its own moments (``bnorm_statistics="image"``)."""
    return model.bnorm_statistics == "image"


def _stored(model: ManTraNet, variables: Variables, x: jax.Array) -> jax.Array:
    """What pass 1 stores, (1, h, w, C) for x (1, h, w, 3): ``bnorm``, or ``outlier_trans`` under per-image
    normalisation."""
    if _per_image(model):
        return model.apply(variables, x, method=ManTraNet.outlier_transform)["outlier_trans"]
    return model.apply(variables, x, method=ManTraNet.adapt)["bnorm"]


@functools.lru_cache(maxsize=None)
def adapted_fn(model: ManTraNet) -> ShapeCompiled:
    """Compiled ``(variables, x (1, h, w, 3), row_w (h,), col_w (w,)) -> (b (h, w, C), shift (C,),
    sums (h, C), sq (h, C))`` (pass 1; ``b`` what ``_stored`` gives).

    With the 0/1 core weights ``w = row_w x col_w``: ``shift`` is the core mean of ``b`` (float32),
    ``sums[i] = sum_j w_ij b_ij`` and ``sq[i] = sum_j w_ij (b_ij - shift)^2`` (row sums: short float32
    reductions, finished in float64 on the host).
    """

    model = for_platform(model, jax.default_backend())  # its compute policy, for where it runs

    def f(variables: Variables, x: jax.Array, row_w: jax.Array, col_w: jax.Array):
        b = _stored(model, variables, x)[0]  # (h, w, C)
        w = (row_w[:, None] * col_w[None, :])[..., None]
        n = jnp.sum(row_w) * jnp.sum(col_w)
        sums = jnp.sum(w * b, axis=1)
        shift = jnp.sum(sums, axis=0) / n
        sq = jnp.sum(w * jnp.square(b - shift), axis=1)
        return b, shift, sums, sq

    return ShapeCompiled(jax.jit(f))


@functools.lru_cache(maxsize=None)
def detect_fn(model: ManTraNet) -> ShapeCompiled:
    """Compiled ``(variables, b (1, h, w, C), moments, mean, std) -> pred (h, w)`` (pass 2): ``b`` the stored
    features, normalised by ``moments`` (per-image normalisation; else None) before
    ``ManTraNet.detect_from_adapted`` with the whole-image ``mean``, ``std`` (1, 1, 1, C)."""

    model = for_platform(model, jax.default_backend())

    def f(variables: Variables, b: jax.Array, moments: BnormMoments, mean: jax.Array, std: jax.Array) -> jax.Array:
        if moments is not None:
            b = model.apply(variables, b, moments, method=ManTraNet.normalize)
        out = model.apply(variables, b, mean, std, method=ManTraNet.detect_from_adapted)
        return out["pred"][0, :, :, 0]

    return ShapeCompiled(jax.jit(f))


class _Moments:
    """Per-channel count, sum and centred sum of squares, combined tile by tile in float64 (Chan et al.)."""

    def __init__(self) -> None:
        self.parts: list[tuple[int, np.ndarray, np.ndarray]] = []  # (n, tile mean, tile M2)

    def add(self, n: int, shift: np.ndarray, sums: np.ndarray, sq: np.ndarray) -> None:
        s = sums.sum(axis=0)
        m = s / n
        m2 = sq.sum(axis=0) - n * np.square(m - shift)  # centre the sum of squares on the exact tile mean
        self.parts.append((n, m, np.maximum(m2, 0.0)))

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, population std), each float32 (1, 1, 1, C)."""
        total = sum(n for n, _, _ in self.parts)
        mean = sum(n * m for n, m, _ in self.parts) / total
        m2 = sum(p_m2 + n * np.square(p_m - mean) for n, p_m, p_m2 in self.parts)
        shape = (1, 1, 1, mean.shape[0])
        return (mean.reshape(shape).astype(np.float32),
                np.sqrt(m2 / total).reshape(shape).astype(np.float32))


def adapted_features(model: ManTraNet, variables: Variables, image: np.ndarray, tile: int,
                     store: FeatureStore | None, progress: Progress | None = None, *,
                     featex_halo: int | None = None, bounded: bool = False,
                     step: int = SHAPE_STEP) -> tuple[np.ndarray, np.ndarray]:
    """Pass 1: every pixel's stored features (``bnorm``, or ``outlier_trans`` under per-image
    normalisation; written to ``store`` when given) and their whole-image statistics.

    Args:
      image: (H, W, 3) uint8 RGB. tile: core size. store: (H, W, C) or None (statistics only).
      featex_halo: pass 1's halo; default (the smallest exact value) ``receptive_halo(model).featex``.
    Returns:
      (mean, std), each float32 (1, 1, 1, C), as ``global_mean`` / ``global_std`` of the stored features
      would give on the whole image (up to float32 rounding).
    """
    h, w = image.shape[:2]
    spans = plan(h, w, tile, receptive_halo(model).featex if featex_halo is None else int(featex_halo),
                 bounded=bounded, step=step)
    fn = adapted_fn(model)
    moments = _Moments()
    for k, (rs, cs) in enumerate(spans):
        x = jnp.asarray(preprocess(image[rs.reg0:rs.reg1, cs.reg0:cs.reg1])[None])
        b, shift, sums, sq = fn(variables, x, core_weights(rs), core_weights(cs))
        if store is not None:
            store.write(rs.core0, cs.core0, crop_core(np.asarray(b), rs, cs))
        del b
        moments.add((rs.core1 - rs.core0) * (cs.core1 - cs.core0),
                    *(np.asarray(a, np.float64) for a in (shift, sums, sq)))
        if progress is not None:
            progress(k + 1, len(spans))
    return moments.mean_std()


def _detection_statistics(model: ManTraNet, mean: np.ndarray,
                          std: np.ndarray) -> tuple[BnormMoments, np.ndarray, np.ndarray]:
    """Pass 2's ``(moments, mean, std)`` from pass 1's whole-image (mean, std) of the stored features.

    Moving statistics: ``(None, mean, std)``. Per-image normalisation: the stored ``outlier_trans`` has
    moments (m, s), so ``moments = (m, s^2)`` and ``bnorm`` has mean 0 and std s / r, r = sqrt(s^2 + eps)."""
    if not _per_image(model):
        return None, mean, std
    c = int(np.asarray(mean).shape[-1])
    m = np.asarray(mean, np.float64).reshape(c)
    s = np.asarray(std, np.float64).reshape(c)
    r = np.sqrt(s * s + AnomalyDetector.bn_epsilon)
    shape = (1, 1, 1, c)
    return ((jnp.asarray(m, jnp.float32), jnp.asarray(s * s, jnp.float32)), np.zeros(shape, np.float32),
            (s / r).reshape(shape).astype(np.float32))


def bnorm_statistics(model: ManTraNet, variables: Variables, image: np.ndarray, tile: int = DEFAULT_TILE,
                     progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Whole-image per-channel (mean, population std) of ``bnorm``, tile by tile, each (1, 1, 1, C) float32."""
    check_model(model)
    stats = adapted_features(model, variables, check_image(image), int(tile), None, progress)
    return _detection_statistics(model, *stats)[1:]


def predict_tiled(model: ManTraNet, variables: Variables, image: np.ndarray, tile: int = DEFAULT_TILE,
                  progress: Progress | None = None, *, halo: int | None = None, featex_halo: int | None = None,
                  store: Backend = "auto", store_folder: str | None = None, bounded: bool = False,
                  step: int = SHAPE_STEP) -> np.ndarray:
    """Tiled forgery probability map, equal to ``predict`` (whole image) up to float32 rounding.

    Args:
      model, variables: a ManTraNet and its variables.
      image: (H, W, 3) uint8 RGB.
      tile: core tile size in pixels (regions are tile + 2 * halo wide; see ``receptive_halo``).
      progress: optional ``progress(done, total)`` over both passes' tiles.
      halo, featex_halo: pass 2's and pass 1's halos; default (and the smallest exact values)
        ``receptive_halo(model).ladn`` and ``.featex``. Smaller values are for studies of the border effect.
      store, store_folder: where the adapted features wait between the passes (``FeatureStore``).
      bounded: tile short axes too (``plan``), so that every image size maps to one of a bounded set of
        compiled shapes. An image that fits one region in both passes is run whole, at its shape.
      step: the ladder step of region lengths (``bounded_axis_plan``).
    Returns:
      (H, W) float32 probabilities.
    """
    check_model(model)
    img = check_image(image)
    if not isinstance(tile, (int, np.integer)) or tile < 1:
        raise ValueError(f"tile must be a positive integer, got {tile!r}")
    tile = int(tile)
    h, w = img.shape[:2]
    radii = receptive_halo(model)
    spans = plan(h, w, tile, radii.ladn if halo is None else int(halo), bounded=bounded, step=step)
    n1 = len(plan(h, w, tile, radii.featex if featex_halo is None else int(featex_halo), bounded=bounded,
                  step=step))
    if len(spans) == 1 and n1 == 1:  # one region in both passes (with ``bounded``: below the ladders): whole
        out = predict(model, variables, img)
        if progress is not None:
            progress(1, 1)
        return out
    total = n1 + len(spans)
    report = None if progress is None else (lambda done, _: progress(done, total))
    channels = adapted_channels(variables)
    with FeatureStore((h, w, channels), backend=store, folder=store_folder) as features:
        stats = adapted_features(model, variables, img, tile, features, report, featex_halo=featex_halo,
                                 bounded=bounded, step=step)
        moments, mean, std = _detection_statistics(model, *stats)
        mean_j, std_j = jnp.asarray(mean), jnp.asarray(std)
        fn = detect_fn(model)
        out = np.empty((h, w), np.float32)
        for k, (rs, cs) in enumerate(spans):
            b = jnp.asarray(features.read(rs.reg0, rs.reg1, cs.reg0, cs.reg1)[None])
            p = np.asarray(fn(variables, b, moments, mean_j, std_j))
            out[rs.core0:rs.core1, cs.core0:cs.core1] = crop_core(p, rs, cs)
            if progress is not None:
                progress(n1 + k + 1, total)
    return out


def predict_auto(model: ManTraNet, variables: Variables, image: np.ndarray, *, tile: int | None = None,
                 auto_tile_pixels: int = 1 << 20, progress: Progress | None = None,
                 bounded: bool = False, store: Backend = "auto") -> tuple[np.ndarray, bool]:
    """Whole-image inference, or tiled when ``tile`` is given, ``bounded`` is set or the image has more than
    ``auto_tile_pixels`` pixels (then with ``DEFAULT_TILE``). Returns ``(map (H, W) float32, tiled)``.
    ``store``: where tiled inference keeps the adapted features (``FeatureStore``). The memory planner
    (``mantra_jax.infer.memory.predict_within``) picks ``tile`` and ``store`` from a budget and calls this."""
    img = check_image(image)
    if tile is None and not bounded and img.shape[0] * img.shape[1] <= auto_tile_pixels:
        return predict(model, variables, img), False
    return predict_tiled(model, variables, img, DEFAULT_TILE if tile is None else tile, progress,
                         bounded=bounded, store=store), True


def tiled_flops(model: ManTraNet, variables: Variables, height: int, width: int,
                tile: int = DEFAULT_TILE, *, bounded: bool = False) -> dict[str, float]:
    """XLA's FLOP counts (cost analysis; compiles, runs nothing) of tiled inference of a height x width image.

    ``variables`` may be arrays or ``jax.ShapeDtypeStruct`` leaves (e.g. from ``jax.eval_shape``). Returns
    ``pass1``, ``pass2`` (summed over tiles), ``tiled`` (their sum), ``whole`` (whole-image inference),
    ``ratio`` (tiled / whole) and the tile counts ``pass1_tiles``, ``pass2_tiles``.
    """
    from collections import Counter

    from mantra_jax.infer.whole import compiled_cost
    from mantra_jax.perf import cost_dict

    check_model(model)
    radii = receptive_halo(model)

    def shapes(halo: int) -> Counter:
        return Counter((r.reg1 - r.reg0, c.reg1 - c.reg0) for r, c in plan(height, width, tile, halo, bounded=bounded))

    def spec(*shape: int) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(shape, jnp.float32)

    channels = adapted_channels(variables)
    s1, s2 = shapes(radii.featex), shapes(radii.ladn)
    pass1 = sum(n * cost_dict(adapted_fn(model).jitted.lower(variables, spec(1, h, w, 3), spec(h), spec(w))
                              .compile())["flops"] for (h, w), n in s1.items())
    stat = spec(1, 1, 1, channels)
    moments = (spec(channels), spec(channels)) if _per_image(model) else None
    pass2 = sum(n * cost_dict(detect_fn(model).jitted.lower(variables, spec(1, h, w, channels), moments, stat, stat)
                              .compile())["flops"] for (h, w), n in s2.items())
    whole = compiled_cost(model, variables, height, width)["flops"]
    return {"pass1": pass1, "pass2": pass2, "tiled": pass1 + pass2, "whole": whole,
            "ratio": (pass1 + pass2) / whole, "pass1_tiles": sum(s1.values()), "pass2_tiles": sum(s2.values())}


def compile_count(model: ManTraNet) -> int:
    """Executables compiled so far for ``model`` by both tiled passes and whole-image inference."""
    return len(pred_fn(model)) + len(adapted_fn(model)) + len(detect_fn(model))


__all__ = ["DEFAULT_TILE", "adapted_features", "adapted_fn", "bnorm_statistics", "compile_count", "detect_fn",
           "predict_auto", "predict_tiled", "tiled_flops"]
