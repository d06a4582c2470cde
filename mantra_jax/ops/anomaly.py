"""Local-anomaly features: pure functions with one signature, selectable by name or passed in.

Every feature has the signature ``fn(x, mean, sigma, windows) -> dict`` where

* ``x``: (B, H, W, C) the batch-normalised adapted features (the release's ``bnorm`` output),
* ``mean``: (B, 1, 1, C) the global mean of ``x`` over H, W (passed in, so that tiled inference can supply
  whole-image statistics for a tile),
* ``sigma``: (B, 1, 1, C) the floored global standard deviation (the release's ``glbStd``),
* ``windows``: the odd window sizes, e.g. (7, 15, 31),

and the dict holds ``"features"``: (B, T, H, W, C') read by the ConvLSTM step by step along T (T = 1 for a
single-step feature), plus optional named intermediates (``"deviations"`` for the release's feature).

Features (paper Section 4 and Table 6):

* ``"time_z"`` (the release, paper "TAC"): for each window n in order, then the global mean,
  ``|(mean_n - x) / sigma|``, stacked on a time axis (T = len(windows) + 1, "far to near" is read in the
  order given). ``deviations`` holds ``mean_t - x`` (the release's ``nestedAvgFeatex``).
* ``"df"``: raw difference to the global mean, ``x - mean`` (paper Eq. 2), T = 1.
* ``"zf"``: the global Z-score alone, ``(x - mean) / sigma`` (paper Eq. 3, signed), T = 1.
* ``"fac"``: the same absolute Z-scores as ``time_z`` but concatenated along channels (paper's
  feature-axis concatenation), T = 1, C' = C * (len(windows) + 1).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jax.numpy as jnp

from mantra_jax.ops.box import global_mean, window_mean

AnomalyFeature = Callable[[jnp.ndarray, jnp.ndarray, jnp.ndarray, Sequence[int]], Mapping[str, jnp.ndarray]]


def _check(x: jnp.ndarray, mean: jnp.ndarray, sigma: jnp.ndarray) -> None:
    if x.ndim != 4:
        raise ValueError(f"anomaly features expect x of shape (B, H, W, C), got {x.shape}")
    for name, v in (("mean", mean), ("sigma", sigma)):
        if v.shape != (x.shape[0], 1, 1, x.shape[-1]) and v.shape != (1, 1, 1, x.shape[-1]):
            raise ValueError(f"{name} must be (B, 1, 1, C) for x {x.shape}, got {v.shape}")


def deviations(x: jnp.ndarray, windows: Sequence[int], mean: jnp.ndarray | None = None) -> jnp.ndarray:
    """``mean_t - x`` for every window and then the global mean; (B, H, W, C) -> (B, T, H, W, C).

    ``mean`` (B, 1, 1, C) is the global mean; computed from ``x`` when omitted.
    """
    means = [window_mean(x, int(n)) for n in windows]
    means.append(jnp.broadcast_to(global_mean(x) if mean is None else mean, x.shape))
    return jnp.stack(means, axis=1) - x[:, None]


def time_z(x: jnp.ndarray, mean: jnp.ndarray, sigma: jnp.ndarray,
           windows: Sequence[int]) -> dict[str, jnp.ndarray]:
    """The release's feature: absolute Z-scores per window and global, on a time axis."""
    _check(x, mean, sigma)
    dev = deviations(x, windows, mean)
    return {"deviations": dev, "features": jnp.abs(dev / sigma[:, None])}


def df(x: jnp.ndarray, mean: jnp.ndarray, sigma: jnp.ndarray,
       windows: Sequence[int]) -> dict[str, jnp.ndarray]:
    """Raw difference to the global mean (paper Eq. 2), one time step."""
    _check(x, mean, sigma)
    return {"features": (x - mean)[:, None]}


def zf(x: jnp.ndarray, mean: jnp.ndarray, sigma: jnp.ndarray,
       windows: Sequence[int]) -> dict[str, jnp.ndarray]:
    """The global Z-score (paper Eq. 3, signed), one time step."""
    _check(x, mean, sigma)
    return {"features": ((x - mean) / sigma)[:, None]}


def fac(x: jnp.ndarray, mean: jnp.ndarray, sigma: jnp.ndarray,
        windows: Sequence[int]) -> dict[str, jnp.ndarray]:
    """Windowed and global absolute Z-scores concatenated along channels, one time step."""
    out = time_z(x, mean, sigma, windows)
    z = out["features"]  # (B, T, H, W, C)
    b, t, h, w, c = z.shape
    cat = jnp.moveaxis(z, 1, 3).reshape(b, h, w, t * c)
    return {"deviations": out["deviations"], "features": cat[:, None]}


ANOMALY_FEATURES: dict[str, AnomalyFeature] = {"time_z": time_z, "df": df, "zf": zf, "fac": fac}


def get_anomaly_feature(feature: str | AnomalyFeature) -> AnomalyFeature:
    """Resolves a registry name or returns a callable unchanged."""
    if callable(feature):
        return feature
    try:
        return ANOMALY_FEATURES[feature]
    except KeyError:
        raise ValueError(
            f"unknown anomaly feature {feature!r}; known: {sorted(ANOMALY_FEATURES)} or pass a function"
        ) from None
