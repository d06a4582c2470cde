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

A researcher's own feature is any function with this signature. A model config names it by its import
path, ``"package.module:function"`` (``resolve_anomaly_feature``), so that it trains, is saved with the
weights and is found again when they are reloaded.

Spatial reach. Exact tiled inference must know how far from a pixel a feature reads ``x``: a feature
declares it with the ``reach`` decorator, a function ``windows -> pixels`` stored as ``fn.reach``
(``anomaly_reach(feature, windows)`` asks it), and optionally, tighter, its reach per time step, a
function ``windows -> (pixels per step)`` stored as ``fn.step_reach`` (``anomaly_step_reach``). The
registered ones: ``time_z`` reads the largest window (``max(windows) // 2``), step by step each window's
radius then 0 (the global mean); ``fac`` the largest window in its one step; ``df`` and ``zf`` only the
pixel itself (0, one step; the global statistics come in through ``mean`` and ``sigma``). A feature
without a declaration has no known reach, and ``anomaly_reach`` says so rather than guess.
"""

from __future__ import annotations

import importlib
from typing import Callable, Mapping, Sequence

import jax.numpy as jnp

from mantra_jax.ops.box import global_mean, window_means

AnomalyFeature = Callable[[jnp.ndarray, jnp.ndarray, jnp.ndarray, Sequence[int]], Mapping[str, jnp.ndarray]]
Reach = Callable[[Sequence[int]], int]
StepReach = Callable[[Sequence[int]], tuple[int, ...]]


def reach(fn_of_windows: Reach, per_step: StepReach | None = None) -> Callable[[AnomalyFeature], AnomalyFeature]:
    """Decorator declaring a feature's spatial reach: ``@reach(lambda windows: max(windows) // 2)``;
    ``per_step``: optionally the reach of each of its T time steps, ``windows -> (r_0, ..., r_{T-1})``."""

    def declare(feature: AnomalyFeature) -> AnomalyFeature:
        feature.reach = fn_of_windows
        feature.step_reach = per_step
        return feature

    return declare


def largest_window(windows: Sequence[int]) -> int:
    """The reach of a feature reading every window: half the largest one (0 without windows)."""
    return max((int(n) // 2 for n in windows), default=0)


def pointwise(windows: Sequence[int]) -> int:
    """The reach of a feature reading only the pixel itself (and the global statistics)."""
    return 0


def window_radii(windows: Sequence[int]) -> tuple[int, ...]:
    """Per-step reach of a feature with one step per window, then one of the global statistics."""
    return tuple(int(n) // 2 for n in windows) + (0,)


def one_step(fn_of_windows: Reach) -> StepReach:
    """Per-step reach of a one-step feature whose reach is ``fn_of_windows``."""
    return lambda windows: (fn_of_windows(windows),)


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
    means = window_means(x, windows)
    means.append(jnp.broadcast_to(global_mean(x) if mean is None else mean, x.shape))
    return jnp.stack(means, axis=1) - x[:, None]


@reach(largest_window, window_radii)
def time_z(x: jnp.ndarray, mean: jnp.ndarray, sigma: jnp.ndarray,
           windows: Sequence[int]) -> dict[str, jnp.ndarray]:
    """The release's feature: absolute Z-scores per window and global, on a time axis."""
    _check(x, mean, sigma)
    dev = deviations(x, windows, mean)
    return {"deviations": dev, "features": jnp.abs(dev / sigma[:, None])}


@reach(pointwise, one_step(pointwise))
def df(x: jnp.ndarray, mean: jnp.ndarray, sigma: jnp.ndarray,
       windows: Sequence[int]) -> dict[str, jnp.ndarray]:
    """Raw difference to the global mean (paper Eq. 2), one time step."""
    _check(x, mean, sigma)
    return {"features": (x - mean)[:, None]}


@reach(pointwise, one_step(pointwise))
def zf(x: jnp.ndarray, mean: jnp.ndarray, sigma: jnp.ndarray,
       windows: Sequence[int]) -> dict[str, jnp.ndarray]:
    """The global Z-score (paper Eq. 3, signed), one time step."""
    _check(x, mean, sigma)
    return {"features": ((x - mean) / sigma)[:, None]}


@reach(largest_window, one_step(largest_window))
def fac(x: jnp.ndarray, mean: jnp.ndarray, sigma: jnp.ndarray,
        windows: Sequence[int]) -> dict[str, jnp.ndarray]:
    """Windowed and global absolute Z-scores concatenated along channels, one time step."""
    out = time_z(x, mean, sigma, windows)
    z = out["features"]  # (B, T, H, W, C)
    b, t, h, w, c = z.shape
    cat = jnp.moveaxis(z, 1, 3).reshape(b, h, w, t * c)
    return {"deviations": out["deviations"], "features": cat[:, None]}


ANOMALY_FEATURES: dict[str, AnomalyFeature] = {"time_z": time_z, "df": df, "zf": zf, "fac": fac}


def resolve_anomaly_feature(feature: str | AnomalyFeature) -> AnomalyFeature:
    """A registry name, an import path ``"package.module:function"``, or a callable (returned unchanged).

    Raises ValueError (one line) for an unknown name, a module that cannot be imported, or a missing or
    non-callable attribute.
    """
    if callable(feature):
        return feature
    if not isinstance(feature, str):
        raise ValueError(f"an anomaly feature is a name, 'package.module:function' or a function, got {feature!r}")
    if feature in ANOMALY_FEATURES:
        return ANOMALY_FEATURES[feature]
    module_name, sep, attr = feature.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"unknown anomaly feature {feature!r}; known: {sorted(ANOMALY_FEATURES)} or an import "
                         f"path 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any failure to import the user's module
        raise ValueError(f"anomaly feature {feature!r}: cannot import {module_name} "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
    if not callable(fn):
        raise ValueError(f"anomaly feature {feature!r}: {module_name} has no function {attr}")
    return fn


get_anomaly_feature = resolve_anomaly_feature


def anomaly_reach(feature: str | AnomalyFeature, windows: Sequence[int]) -> int:
    """How far (pixels) from an output pixel ``feature`` reads its input ``x`` (see the module docstring).

    Raises ValueError when the feature declares no reach (decorate it with ``reach``).
    """
    fn = resolve_anomaly_feature(feature)
    declared = getattr(fn, "reach", None)
    if declared is None:
        name = feature if isinstance(feature, str) else getattr(fn, "__qualname__", repr(fn))
        raise ValueError(f"anomaly feature {name!r} declares no spatial reach; decorate it with "
                         f"mantra_jax.ops.anomaly.reach(...) so that tiled inference can be exact")
    n = int(declared(tuple(int(w) for w in windows)))
    if n < 0:
        raise ValueError(f"anomaly feature reach must be >= 0, got {n}")
    return n


def anomaly_step_reach(feature: str | AnomalyFeature, windows: Sequence[int]) -> tuple[int, ...] | None:
    """The reach of each time step of ``feature`` (see the module docstring), None when it declares none."""
    declared = getattr(resolve_anomaly_feature(feature), "step_reach", None)
    if declared is None:
        return None
    steps = tuple(int(n) for n in declared(tuple(int(w) for w in windows)))
    if not steps or min(steps) < 0:
        raise ValueError(f"an anomaly feature's per-step reach must be one or more values >= 0, got {steps}")
    return steps
