"""Sensitivity to subtle manipulations (paper Sec. 5.2, Fig. 4a): one enhancement-forgery set per type.

For a manipulation type f (one entry of ``mantra_jax.manipulations.CATALOGUE``, i.e. a family and a
parameter) and N pristine patches P_k, the set holds ``Z_k = P_k (1 - M_k) + f(P_k) M_k`` with M_k a
random structured mask (``mantra_jax.data.masks.random_mask``, forged area in ``area``) and the blend done
by ``mantra_jax.data.forgeries.enhance``. The detector is scored on each set (pixel AUC, best F1, ...), one
data point per type, as in the paper's 5,000-patch sets (smaller by default here).

Randomness: image k of type index i uses ``numpy.random.default_rng([seed, i, k])`` for its mask and for
the manipulation (noise types), so a set is the same whatever other types are studied.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

SUMMARY = ("pixel_auc", "pixel_f1_best", "pixel_f1_fixed", "pixel_iou")


def forgery_set(patches: np.ndarray, manipulation: Any, *, seed: int = 0,
                area: tuple[float, float] = (0.05, 0.35)) -> tuple[np.ndarray, np.ndarray]:
    """Enhancement forgeries of every patch with one manipulation type.

    Args:
      patches: (N, H, W, 3) uint8 pristine patches.
      manipulation: a catalogue entry (``.index``, ``.apply(image, rng)``).
      seed: study seed. area: forged-fraction range of the masks.
    Returns:
      (images (N, H, W, 3) uint8, masks (N, H, W) bool).
    """
    from mantra_jax.data.forgeries import enhance
    from mantra_jax.data.masks import random_mask

    patches = np.asarray(patches)
    if patches.dtype != np.uint8 or patches.ndim != 4 or patches.shape[3] != 3 or len(patches) == 0:
        raise ValueError(f"patches must be a non-empty (N, H, W, 3) uint8 array, got {patches.dtype} {patches.shape}")
    n, h, w = patches.shape[:3]
    images = np.empty_like(patches)
    masks = np.empty((n, h, w), np.bool_)
    for k in range(n):
        rng = np.random.default_rng([seed, int(manipulation.index), k])
        mask = random_mask(h, w, rng, area=area)
        images[k] = enhance(patches[k], mask, manipulation.apply, rng)
        masks[k] = mask.astype(np.bool_)
    return images, masks


def study(patches: np.ndarray, manipulations: Sequence[Any], predict: Callable[[np.ndarray], np.ndarray], *,
          seed: int = 0, area: tuple[float, float] = (0.05, 0.35),
          progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Scores ``predict`` (image -> (H, W) map) on one forgery set per manipulation type.

    Returns one row per type: ``name``, ``family``, ``parameter``, ``group``, ``n_images``, the ``SUMMARY``
    metrics (``mantra_jax.eval.metrics.evaluate``) and ``mean_abs_change`` (mean |Z - P| over forged
    pixels, 0..255: how strong the manipulation is).
    """
    from mantra_jax.eval.metrics import MetricsAccumulator

    rows = []
    for m in manipulations:
        if progress is not None:
            progress(m.name)
        images, masks = forgery_set(patches, m, seed=seed, area=area)
        acc = MetricsAccumulator()
        for image, mask in zip(images, masks):
            acc.add(predict(image), mask)
        summary = acc.summary()
        diff = np.abs(images.astype(np.int16) - np.asarray(patches, np.int16)).mean(axis=-1)
        rows.append({"name": m.name, "family": m.family, "parameter": m.parameter, "group": m.group,
                     "n_images": summary["n_images"], **{k: summary[k] for k in SUMMARY},
                     "mean_abs_change": float(diff[masks].mean()) if masks.any() else 0.0})
    return rows


def plot_study(rows: Sequence[dict[str, Any]], path: Any, metric: str = "pixel_auc") -> None:
    """One bar panel per family (types in catalogue order, labelled by parameter); PNG via Agg, atomic."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mantra_jax.io.atomic import write_bytes_atomic

    families = list(dict.fromkeys(r["family"] for r in rows))
    if not families:
        raise ValueError("plot_study needs at least one row")
    cols = min(4, len(families))
    nrows = -(-len(families) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.8 * nrows), squeeze=False)
    for ax in axes.ravel()[len(families):]:
        ax.axis("off")
    for ax, family in zip(axes.ravel(), families):
        sub = [r for r in rows if r["family"] == family]
        values = [np.nan if r[metric] is None else r[metric] for r in sub]
        ax.bar(range(len(sub)), values, color="C0")
        ax.set_xticks(range(len(sub)), [r["parameter"] or "-" for r in sub], rotation=90, fontsize=6)
        ax.set_ylim(0.0, 1.0)
        ax.set_title(family, fontsize=9)
        ax.axhline(0.5, color="grey", linewidth=0.6, linestyle="--")
    axes[0][0].set_ylabel(metric)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
