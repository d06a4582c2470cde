"""Exact tiled inference: the whole-image probability map of a large photo, at about the cost of one pass.

Why it can be exact. Every layer but one is local:

* the feature extractor is a stack of symmetric-padded convolutions (one 5x5, then 3x3s): a pixel's
  ``featex`` depends on the input within ``F = 2 + #3x3 convs`` pixels (14 for the release trunk), and the
  symmetric padding happens only at the image border;
* ``outlierTrans`` (1x1) and ``bnorm`` (moving statistics in inference) are per pixel;
* the window means count in-image pixels, so a window mean at q depends on ``bnorm`` within the window
  radius ``r`` of q, and the count of a window that lies inside a region equals the whole-image count;
* the ConvLSTM runs T steps of 7x7 zero-'same' convolutions (input and recurrent, h0 = 0): h_T at q
  depends on step t's anomaly features (t = 0..T-1; for ``time_z`` the windows in order, then the global
  mean) within ``3 (T - t)`` of q; the 7x7 ``pred`` convolution adds 3;

and the one global quantity, the per-channel mean and standard deviation of ``bnorm`` over the whole image,
needs every pixel's ``bnorm`` before any map pixel can be computed.

Pass 1 (adapted features, once). For each core tile, run the network up to ``bnorm`` (the 64-channel
adapted features; XLA drops everything after it) on the core extended by ``F``, keep the core's ``bnorm``
in a ``FeatureStore`` (host memory, or an unlinked temporary file for large images) and accumulate
per-channel sums and centred sums of squares over the core in float64 on the host (the parallel-variance
combination of Chan et al.). A core pixel's ``bnorm`` is exact: its ``F`` cone never reads the region's
symmetric padding where the region stops inside the image.

Pass 2 (LADN remainder). For each core tile, read the stored ``bnorm`` of the core extended by
``L = max_t (r_t + 3 (T - t)) + 3`` (``Halo.ladn``: 24 for Ptrain4, whose widest window comes third of
four steps; 40 for Ptrain0) and run only the rest of the LADN on it (window means, anomaly feature,
ConvLSTM, pred) with the pass-1 statistics; keep the core. A core pixel p is exact when, on every side
where the region stops inside the image, the region reaches at least ``L`` beyond p: then p's
ConvLSTM/pred cone never reads the zero padding at the region border for a feature it depends on, and each
window mean it depends on sees exactly the in-image pixels of its window. The rest of
the LADN is the network's own code: the model is applied with its feature extractor intercepted to return
the stored ``bnorm``, and with ``outlierTrans`` and ``bnorm`` set to exact identities (``tail_variables``).

Cost. The feature extractor (about 90% of the release model's FLOPs) runs once per pixel plus the ``F``
margins; only the small LADN remainder runs on the wider pass-2 margins. For a 4000 x 3000 photo at tile
512 the total is 1.17x the whole-image FLOPs for Ptrain4, 1.19x for Ptrain0 (XLA cost analysis,
``experiments/bench_tiled.py --flops_only``), against
about 2.5x when pass 2 re-ran the feature extractor.

Bounded shapes. Along an axis of length A longer than ``R = tile + 2 halo``, all regions have one length
g from the ladder ``R, R - 32, R - 64, ...`` (the g whose plan computes the fewest pixels), shifted inward
at the image border (``start = clip(core_start - halo, 0, A - g)``) rather than clipped; the core sits at
a varying offset inside its region and is cropped on the host. An axis no longer than R is one region
spanning it, and an image that fits one region in both passes is simply run whole
(``mantra_jax.infer.whole.predict``), at its own shape. With ``bounded=True`` short axes use the ladder
too, so each pass compiles at most ``(#ladder + foot)^2`` shapes whatever the image sizes (``foot``: the
lengths below the ladder's last value, at most ``2 halo + 32``, which are run whole along that axis; an
image below both passes' ladders is run whole), at the price of some overlap on small images (``mantra
eval``'s default; ``--no-bounded-shapes`` compiles one whole-image program per image size).

Peak memory is that of one region's network buffers plus the H x W float32 output; the stored features
(H x W x 64 float32) are in host memory only below ``feature_store.MEMORY_LIMIT_BYTES``, else on disk.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mantra_jax.compile_cache import ShapeCompiled
from mantra_jax.infer.feature_store import Backend, FeatureStore
from mantra_jax.infer.whole import Variables, check_image, check_model, pred_fn, predict
from mantra_jax.io.images import preprocess
from mantra_jax.models.compute import for_platform
from mantra_jax.models.ladn import AnomalyDetector, ladn_reach
from mantra_jax.models.mantranet import ManTraNet

DEFAULT_TILE = 512
SHAPE_STEP = 32  # region lengths come from tile + 2 halo - k * SHAPE_STEP (bounded_axis_plan)
Progress = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class Halo:
    """Receptive radii in pixels. ``featex``: the feature extractor's (pass 1's halo). ``ladn``: the LADN
    after ``bnorm`` (pass 2's halo), ``max_t (reach_t + k (T - t)) + p`` over the anomaly feature's time
    steps t = 0..T-1, with ``reach_t`` the distance at which step t reads ``bnorm`` (its window radius for
    ``time_z``), k = lstm_kernel // 2 and p = pred_kernel // 2: step t's features pass through the input
    convolution and the T - 1 - t later recurrent ones. ``total``: the whole network's receptive radius."""

    featex: int
    ladn: int
    steps: int
    reach: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.featex + self.ladn


def _declares_reach(feature: Any) -> bool:
    """Whether an anomaly feature declares its spatial reach (``mantra_jax.ops.anomaly.reach``)."""
    from mantra_jax.ops.anomaly import get_anomaly_feature

    return getattr(get_anomaly_feature(feature), "reach", None) is not None


def _registered_reach(name: str, windows: tuple[int, ...]) -> tuple[int, ...] | None:
    """Per-step reach of the registered anomaly features (``mantra_jax.ops.anomaly``); None if unknown."""
    radii = tuple(int(n) // 2 for n in windows)
    return {"time_z": radii + (0,), "fac": (max(radii, default=0),), "df": (0,), "zf": (0,)}.get(name)


def measured_reach(feature: Any, windows: tuple[int, ...]) -> tuple[int, ...]:
    """Per time step of an anomaly feature, the largest distance at which it reads its input.

    Measured: the nonzero pattern of the feature's Jacobian on a random one-row probe wider than the
    largest window (window means weight every pixel of their window by 1 / count > 0, so no dependence
    cancels). Compiles the feature once (seconds on CPU), hence used only for features passed as functions.
    Raises ValueError for a feature that reads beyond the probe (not tileable).
    """
    from mantra_jax.ops.anomaly import get_anomaly_feature

    fn = get_anomaly_feature(feature)
    centre = max((int(n) for n in windows), default=1)
    width = 2 * centre + 1
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 1, width, 1)), jnp.float32)
    mean, sigma = jnp.zeros((1, 1, 1, 1), jnp.float32), jnp.ones((1, 1, 1, 1), jnp.float32)
    jac = jax.jit(jax.jacfwd(lambda a: fn(a, mean, sigma, tuple(windows))["features"][0, :, 0, centre]))(x)
    reads = np.asarray(jnp.abs(jac)).reshape(jac.shape[0], -1, width).max(axis=1) > 0  # (T, width)
    reach = tuple(int(np.abs(np.flatnonzero(r) - centre).max()) if r.any() else 0 for r in reads)
    if max(reach) >= centre:
        raise ValueError(f"anomaly feature {feature!r} reads {max(reach)} px or more away: tiled inference "
                         "needs a local feature")
    return reach


@functools.lru_cache(maxsize=None)
def receptive_halo(model: ManTraNet) -> Halo:
    """The halo of ``model`` (see ``Halo`` and the module docstring)."""
    check_model(model)
    featex = 2 + sum(len(block) for block in model.trunk) + 1  # b1c1 5x5, trunk 3x3s, transform 3x3
    windows = tuple(int(n) for n in model.windows)
    reach = None
    if isinstance(model.anomaly_feature, str):
        reach = _registered_reach(model.anomaly_feature, windows)  # tight, per time step
    if reach is None and _declares_reach(model.anomaly_feature):
        # a declared reach bounds every time step (ops.anomaly.reach); the steps come from the model's shapes
        x = jnp.zeros((1, 8, 8, 3), jnp.float32)
        out = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), x)[0])
        reach = (ladn_reach(model),) * int(out["features"].shape[1])
    if reach is None:
        reach = measured_reach(model.anomaly_feature, windows)
    steps = len(reach)
    k, p = AnomalyDetector.lstm_kernel // 2, AnomalyDetector.pred_kernel // 2
    ladn = max(r + k * (steps - t) for t, r in enumerate(reach)) + p
    return Halo(featex=featex, ladn=ladn, steps=steps, reach=reach)


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


def plan(height: int, width: int, tile: int, halo: int, *, bounded: bool = False,
         step: int = SHAPE_STEP) -> list[tuple[Span, Span]]:
    """Row-major (rows, cols) spans of a height x width image.

    An axis no longer than ``tile + 2 halo`` is one region spanning it, unless ``bounded``; otherwise (and
    always when ``bounded``) the axis gets ``bounded_axis_plan``'s cheapest ladder plan.
    """

    def axis(length: int) -> list[Span]:
        if not bounded and length <= tile + 2 * halo:
            return axis_plan(length, tile, halo)
        return bounded_axis_plan(length, tile, halo, step)

    rows, cols = axis(height), axis(width)
    return [(r, c) for r in rows for c in cols]


def fixed_axis_plan(length: int, region: int, halo: int) -> list[Span]:
    """Cores covering [0, length) once with regions all ``region`` long (``2 halo < region <= length``),
    shifted inward at the ends; a border region's core reaches its outer end (no halo needed there)."""
    if not 2 * halo < region <= length:
        raise ValueError(f"fixed_axis_plan needs 2 halo < region <= length; got {halo}, {region}, {length}")
    spans, core0 = [], 0
    while core0 < length:
        reg0 = min(max(core0 - halo, 0), length - region)
        core1 = length if reg0 + region == length else reg0 + region - halo
        spans.append(Span(core0, core1, reg0, reg0 + region))
        core0 = core1
    return spans


def bounded_axis_plan(length: int, tile: int, halo: int, step: int) -> list[Span]:
    """The cheapest plan whose regions have a length from the ladder ``tile + 2 halo - k step`` (k >= 0,
    values above ``2 halo``), or the whole axis when it is shorter than the ladder's last value.

    So an axis of any length gets one of at most ``tile // step + 1`` region lengths, or its own length
    below the ladder's foot: a bounded set of shapes whatever the image sizes, at the cost of some overlap
    (cheapest = fewest pixels computed).
    """
    if step < 1:
        raise ValueError(f"step must be positive, got {step}")
    ladder = range(tile + 2 * halo, 2 * halo, -step)
    fits = [g for g in ladder if g <= length]
    if not fits:
        return [Span(0, length, 0, length)]
    return min((fixed_axis_plan(length, g, halo) for g in fits), key=lambda sp: len(sp) * (sp[0].reg1 - sp[0].reg0))


def _core_weights(span: Span) -> np.ndarray:
    w = np.zeros(span.reg1 - span.reg0, np.float32)
    w[span.core0 - span.reg0:span.core1 - span.reg0] = 1.0
    return w


def _core(a: np.ndarray, rs: Span, cs: Span) -> np.ndarray:
    """The core of a region-shaped array (region rows/cols first)."""
    return a[rs.core0 - rs.reg0:rs.core1 - rs.reg0, cs.core0 - cs.reg0:cs.core1 - cs.reg0]


@functools.lru_cache(maxsize=None)
def adapted_fn(model: ManTraNet) -> ShapeCompiled:
    """Compiled ``(variables, x (1, h, w, 3), row_w (h,), col_w (w,)) -> (bnorm (h, w, C), shift (C,),
    sums (h, C), sq (h, C))`` (pass 1).

    With the 0/1 core weights ``w = row_w x col_w``: ``shift`` is the core mean of ``bnorm`` (float32),
    ``sums[i] = sum_j w_ij b_ij`` and ``sq[i] = sum_j w_ij (b_ij - shift)^2`` (row sums: short float32
    reductions, finished in float64 on the host). Only the network up to ``bnorm`` is computed.
    """

    model = for_platform(model, jax.default_backend())  # its compute policy, for where it runs

    def f(variables: Variables, x: jax.Array, row_w: jax.Array, col_w: jax.Array):
        b = model.apply(variables, x)["bnorm"][0]  # (h, w, C)
        w = (row_w[:, None] * col_w[None, :])[..., None]
        n = jnp.sum(row_w) * jnp.sum(col_w)
        sums = jnp.sum(w * b, axis=1)
        shift = jnp.sum(sums, axis=0) / n
        sq = jnp.sum(w * jnp.square(b - shift), axis=1)
        return b, shift, sums, sq

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
    """Pass 1: every pixel's ``bnorm`` (written to ``store`` when given) and their whole-image statistics.

    Args:
      image: (H, W, 3) uint8 RGB. tile: core size. store: (H, W, C) or None (statistics only).
      featex_halo: pass 1's halo; default (the smallest exact value) ``receptive_halo(model).featex``.
    Returns:
      (mean, std), each float32 (1, 1, 1, C), as the network's ``global_mean`` / ``global_std`` would give
      on the whole image (up to float32 rounding).
    """
    h, w = image.shape[:2]
    spans = plan(h, w, tile, receptive_halo(model).featex if featex_halo is None else int(featex_halo),
                 bounded=bounded, step=step)
    fn = adapted_fn(model)
    moments = _Moments()
    for k, (rs, cs) in enumerate(spans):
        x = jnp.asarray(preprocess(image[rs.reg0:rs.reg1, cs.reg0:cs.reg1])[None])
        b, shift, sums, sq = fn(variables, x, _core_weights(rs), _core_weights(cs))
        if store is not None:
            store.write(rs.core0, cs.core0, _core(np.asarray(b), rs, cs))
        del b
        moments.add((rs.core1 - rs.core0) * (cs.core1 - cs.core0),
                    *(np.asarray(a, np.float64) for a in (shift, sums, sq)))
        if progress is not None:
            progress(k + 1, len(spans))
    return moments.mean_std()


def bnorm_statistics(model: ManTraNet, variables: Variables, image: np.ndarray, tile: int = DEFAULT_TILE,
                     progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Whole-image per-channel (mean, population std) of ``bnorm``, tile by tile, each (1, 1, 1, C) float32."""
    check_model(model)
    if model.bnorm_statistics == "image":
        model, first, tail = _per_image_stages(model, variables)
        return tail(*adapted_features(model, first, check_image(image), int(tile), None, progress))[1:]
    return adapted_features(model, variables, check_image(image), int(tile), None, progress)


def _unit_variance(eps: float) -> np.float32:
    """A float32 ``v`` with ``fl(v + eps) == 1``, so that batch normalisation by (0, v) is the identity."""
    e = np.float32(eps)
    v = np.float32(1) - e
    while v + e != np.float32(1):
        v = np.nextafter(v, np.float32(2) if v + e < 1 else np.float32(0))
    return v


def _identity_bnorm(c: int) -> dict[str, jax.Array]:
    """Moving statistics (mean 0, variance ``1 - eps``) that make ``bnorm`` an exact identity in float32."""
    var = _unit_variance(AnomalyDetector.bn_epsilon)
    return {"moving_mean": jnp.zeros((c,), jnp.float32), "moving_variance": jnp.full((c,), var, jnp.float32)}


def tail_variables(variables: Variables, bnorm: dict[str, jax.Array] | None = None) -> Variables:
    """The LADN's variables with ``outlierTrans`` (a C x C identity) and ``bnorm`` (mean 0, variance
    ``1 - eps``) made exact identities, so the LADN applied to stored ``bnorm`` features reproduces the rest
    of the network bit for bit: ``x * 1 + 0 * ...`` and ``(x - 0) * (1 / sqrt(1))`` are exact in float32.
    ``bnorm``: moving statistics to keep instead of the identity (per-image normalisation, below)."""
    ladn = dict(variables["params"]["LADN"])
    c = int(ladn["outlierTrans"]["kernel"].shape[-1])
    ladn["outlierTrans"] = {"kernel": jnp.eye(c, dtype=jnp.float32).reshape(1, 1, c, c)}
    return {"params": {"LADN": ladn}, "batch_stats": {"LADN": {"bnorm": _identity_bnorm(c) if bnorm is None
                                                                else bnorm}}}


def _per_image_stages(model: ManTraNet, variables: Variables):
    """For ``bnorm_statistics="image"`` (each image normalised by its own moments, which a tile does not
    have): pass 1 runs the release model with an identity ``bnorm``, so it stores ``outlierTrans`` and its
    whole-image moments (m, s); pass 2 keeps ``bnorm`` as moving statistics (m, s^2), the per-image
    normalisation, whose output has whole-image mean (m - m) / r = 0 and std s / r, r = sqrt(s^2 + eps).
    Returns ``(pass-1 model, pass-1 variables, tail(mean, std) -> (tail variables, bnorm mean, bnorm std))``."""
    moving = model.clone(bnorm_statistics="moving")
    c = int(variables["params"]["LADN"]["outlierTrans"]["kernel"].shape[-1])
    first = {**variables, "batch_stats": {"LADN": {"bnorm": _identity_bnorm(c)}}}

    def tail(mean: np.ndarray, std: np.ndarray):
        m = np.asarray(mean, np.float64).reshape(c)
        s = np.asarray(std, np.float64).reshape(c)
        bnorm = {"moving_mean": jnp.asarray(m, jnp.float32), "moving_variance": jnp.asarray(s * s, jnp.float32)}
        r = np.sqrt(s * s + AnomalyDetector.bn_epsilon)
        shape = (1, 1, 1, c)
        return (tail_variables(variables, bnorm), np.zeros(shape, np.float32),
                (s / r).reshape(shape).astype(np.float32))

    return moving, first, tail


def _featex_returns(features: jax.Array) -> Callable[..., Any]:
    """A Flax method interceptor: the top model's ``Featex`` submodule returns ``features`` without running."""

    def interceptor(next_fun, args, kwargs, context):
        m = context.module
        if context.method_name == "__call__" and m.name == "Featex" and isinstance(m.parent, ManTraNet):
            return features
        return next_fun(*args, **kwargs)

    return interceptor


@functools.lru_cache(maxsize=None)
def tail_fn(model: ManTraNet) -> ShapeCompiled:
    """Compiled ``(tail_variables, b (1, h, w, C), mean, std) -> pred (h, w)``: the LADN after ``bnorm``
    (pass 2), run by the model's own code with its feature extractor intercepted (``_featex_returns``)."""

    model = for_platform(model, jax.default_backend())

    def f(variables: Variables, b: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
        x = jnp.zeros(b.shape[:3] + (3,), jnp.float32)  # shape only: Featex is intercepted, XLA drops it
        with nn.intercept_methods(_featex_returns(b)):
            out = model.apply(variables, x, global_stats=(mean, std))
        return out["pred"][0, :, :, 0]

    return ShapeCompiled(jax.jit(f))


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
    channels = int(variables["params"]["LADN"]["outlierTrans"]["kernel"].shape[-1])
    if model.bnorm_statistics == "image":
        model, first_v, tail = _per_image_stages(model, variables)
    else:
        first_v, tail = variables, lambda mean, std: (tail_variables(variables), mean, std)
    with FeatureStore((h, w, channels), backend=store, folder=store_folder) as features:
        mean, std = adapted_features(model, first_v, img, tile, features, report, featex_halo=featex_halo,
                                     bounded=bounded, step=step)
        tail_v, mean, std = tail(mean, std)
        mean_j, std_j = jnp.asarray(mean), jnp.asarray(std)
        fn = tail_fn(model)
        out = np.empty((h, w), np.float32)
        for k, (rs, cs) in enumerate(spans):
            b = jnp.asarray(features.read(rs.reg0, rs.reg1, cs.reg0, cs.reg1)[None])
            p = np.asarray(fn(tail_v, b, mean_j, std_j))
            out[rs.core0:rs.core1, cs.core0:cs.core1] = _core(p, rs, cs)
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

    channels = int(variables["params"]["LADN"]["outlierTrans"]["kernel"].shape[-1])
    s1, s2 = shapes(radii.featex), shapes(radii.ladn)
    pass1 = sum(n * cost_dict(adapted_fn(model).jitted.lower(variables, spec(1, h, w, 3), spec(h), spec(w))
                              .compile())["flops"] for (h, w), n in s1.items())
    stat = spec(1, 1, 1, channels)
    tail_v = tail_variables(variables)
    pass2 = sum(n * cost_dict(tail_fn(model).jitted.lower(tail_v, spec(1, h, w, channels), stat, stat)
                              .compile())["flops"] for (h, w), n in s2.items())
    whole = compiled_cost(model, variables, height, width)["flops"]
    return {"pass1": pass1, "pass2": pass2, "tiled": pass1 + pass2, "whole": whole,
            "ratio": (pass1 + pass2) / whole, "pass1_tiles": sum(s1.values()), "pass2_tiles": sum(s2.values())}


def compile_count(model: ManTraNet) -> int:
    """Executables compiled so far for ``model`` by both tiled passes and whole-image inference."""
    return len(pred_fn(model)) + len(adapted_fn(model)) + len(tail_fn(model))


__all__ = ["DEFAULT_TILE", "SHAPE_STEP", "Halo", "Span", "adapted_features", "axis_plan", "bnorm_statistics",
           "bounded_axis_plan", "compile_count", "fixed_axis_plan", "measured_reach", "plan", "predict_auto",
           "predict_tiled", "receptive_halo", "tail_variables", "tiled_flops"]
