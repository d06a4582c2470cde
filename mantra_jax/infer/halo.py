"""The receptive halos of exact tiled inference (``mantra_jax.infer.tiled``): how far each pass's output
pixel reads its input.

* Pass 1 (the feature extractor): a stack of symmetric-padded convolutions (the release's: one 5x5 then
  3x3s), so a pixel's ``featex`` depends on the input within ``F`` = the kernels' reach ``k // 2`` summed
  over the longest path (``mantra_jax.models.structure``; 2 + #3x3 convs = 14 for the release trunk);
  ``outlierTrans`` (1x1) and ``bnorm`` are per pixel.
* Pass 2 (the LADN after ``bnorm``): the window means count in-image pixels, so a window mean at q depends
  on ``bnorm`` within the window radius ``r`` of q; the ConvLSTM runs T steps of 7x7 zero-'same'
  convolutions (input and recurrent, h0 = 0): h_T at q depends on step t's anomaly features (t = 0..T-1;
  for ``time_z`` the windows in order, then the global mean) within ``3 (T - t)`` of q; the 7x7 ``pred``
  convolution adds 3. So ``L = max_t (r_t + 3 (T - t)) + 3`` (24 for Ptrain4, whose widest window comes
  third of four steps; 40 for Ptrain0).

The per-step reach ``r_t`` comes from the anomaly feature's declared per-step reach (``per_step`` of
``mantra_jax.ops.anomaly.reach``, as the registered features declare it), else from its declared overall
reach (bounding every step), or else is measured from the feature's Jacobian.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mantra_jax.infer.whole import check_model
from mantra_jax.models.ladn import ladn_reach
from mantra_jax.models.mantranet import ManTraNet
from mantra_jax.models.structure import radius
from mantra_jax.ops.anomaly import anomaly_step_reach


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
    featex = radius(model.featex.layers())  # the kernels' reach over the longest path (14 for the release)
    windows = tuple(int(n) for n in model.windows)
    reach = anomaly_step_reach(model.anomaly_feature, windows)  # tight, per time step, where declared
    if reach is None and _declares_reach(model.anomaly_feature):
        # a declared reach bounds every time step (ops.anomaly.reach); the steps come from the model's shapes
        x = jnp.zeros((1, 8, 8, 3), jnp.float32)
        out = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), x)[0])
        reach = (ladn_reach(model),) * int(out["features"].shape[1])
    if reach is None:
        reach = measured_reach(model.anomaly_feature, windows)
    steps = len(reach)
    detector = model.detector()
    k, p = detector.lstm_kernel // 2, detector.pred_kernel // 2
    ladn = max(r + k * (steps - t) for t, r in enumerate(reach)) + p
    return Halo(featex=featex, ladn=ladn, steps=steps, reach=reach)


__all__ = ["Halo", "measured_reach", "receptive_halo"]
