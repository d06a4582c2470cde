"""Streaming localisation metrics for validation: pixel F1 per forgery kind and an approximate pixel AUC.

Per batch, on device, from ``pred_logits`` (B, H, W, 1), the mask (B, H, W, 1) in {0, 1} and the kind
(B,):

* F1 at the fixed threshold 0.5 (a pixel is predicted forged when ``p >= 0.5``, i.e. ``logit >= 0``; the
  convention of ``mantra_jax.eval.metrics``): integer TP / FP / FN counts per kind. On the host the counts
  of the whole validation set are summed and ``F1 = 2 TP / (2 TP + FP + FN)`` is computed per kind and over
  all kinds ("overall"). This is a pooled (micro) F1 over pixels, not a mean of per-image F1 scores; it is
  NaN for a kind with no forged and no predicted pixel.
* AUC, pooled over all validation pixels: integer histograms of ``p`` in ``bins`` equal bins of [0, 1]
  for forged and for pristine pixels. AUC = sum over bins of ``pos[i] * (neg[< i] + neg[i] / 2)`` divided
  by ``P * N``: exact except that pairs falling in the same bin count one half, so the error is at most
  half the fraction of (forged, pristine) pairs sharing a bin. The exact per-image AUC of the paper's
  protocol is in ``mantra_jax.eval.metrics`` (for benchmarks, not for monitoring training). The same
  histograms per forgery kind (``pos_hist_kind``, ``neg_hist_kind``, (K, bins)) give ``auc/<kind>``.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

AUC_BINS = 1024


def pixel_batch_sums(logits: jnp.ndarray, mask: jnp.ndarray, kind: jnp.ndarray, num_kinds: int,
                     bins: int = AUC_BINS) -> dict[str, jnp.ndarray]:
    """Counts ``tp``, ``fp``, ``fn`` (num_kinds,), ``pos_hist``, ``neg_hist`` (bins,) and per kind
    ``pos_hist_kind``, ``neg_hist_kind`` (num_kinds, bins), all int32."""
    if logits.ndim != 4 or mask.shape != logits.shape or kind.shape != logits.shape[:1]:
        raise ValueError(f"expected logits and mask (B, H, W, 1) and kind (B,), got {logits.shape}, "
                         f"{mask.shape}, {kind.shape}")
    truth = mask > 0.5
    bad = jnp.isnan(logits)  # a NaN prediction is always wrong: the opposite of the truth, the worst rank
    pred = jnp.where(bad, ~truth, logits >= 0)
    per_image = lambda a: jnp.sum(a, axis=(1, 2, 3), dtype=jnp.int32)  # noqa: E731
    tp, fp, fn = per_image(pred & truth), per_image(pred & ~truth), per_image(~pred & truth)
    by_kind = lambda a: jnp.zeros((num_kinds,), jnp.int32).at[kind].add(a)  # noqa: E731
    p = jax.nn.sigmoid(logits.astype(jnp.float32)).ravel()
    t = truth.ravel().astype(jnp.int32)
    idx = jnp.clip(jnp.floor(jnp.nan_to_num(p) * bins).astype(jnp.int32), 0, bins - 1)
    idx = jnp.where(bad.ravel(), (1 - t) * (bins - 1), idx)  # NaN: forged in the lowest bin, pristine the top
    pixel_kind = jnp.broadcast_to(kind[:, None, None, None], logits.shape).ravel()
    pos_kind = jnp.zeros((num_kinds, bins), jnp.int32).at[pixel_kind, idx].add(t)
    neg_kind = jnp.zeros((num_kinds, bins), jnp.int32).at[pixel_kind, idx].add(1 - t)
    return {"tp": by_kind(tp), "fp": by_kind(fp), "fn": by_kind(fn),
            "pos_hist": jnp.sum(pos_kind, axis=0), "neg_hist": jnp.sum(neg_kind, axis=0),
            "pos_hist_kind": pos_kind, "neg_hist_kind": neg_kind}


def f1_from_counts(tp: float, fp: float, fn: float) -> float:
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom > 0 else math.nan


def histogram_auc(pos_hist: np.ndarray, neg_hist: np.ndarray) -> float:
    """Approximate ROC AUC from score histograms of positives and negatives (bins in increasing score)."""
    pos = np.asarray(pos_hist, np.float64)
    neg = np.asarray(neg_hist, np.float64)
    if pos.shape != neg.shape or pos.ndim != 1:
        raise ValueError(f"histograms must be two 1-D arrays of the same length, got {pos.shape}, {neg.shape}")
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return math.nan
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (n_pos * n_neg))


def summarize_pixels(sums: Mapping[str, np.ndarray], kind_names: Sequence[str]) -> dict[str, float]:
    """``{"f1/<kind>", "f1/overall", "auc", "auc/<kind>"}`` from summed batch counts (``auc/<kind>`` when
    the per-kind histograms are among them)."""
    tp, fp, fn = (np.asarray(sums[k], np.float64) for k in ("tp", "fp", "fn"))
    if len(kind_names) != tp.shape[0]:
        raise ValueError(f"{len(kind_names)} kind names for {tp.shape[0]} kinds")
    out = {f"f1/{name}": f1_from_counts(tp[i], fp[i], fn[i]) for i, name in enumerate(kind_names)}
    out["f1/overall"] = f1_from_counts(tp.sum(), fp.sum(), fn.sum())
    out["auc"] = histogram_auc(sums["pos_hist"], sums["neg_hist"])
    if "pos_hist_kind" in sums:
        for i, name in enumerate(kind_names):
            out[f"auc/{name}"] = histogram_auc(np.asarray(sums["pos_hist_kind"])[i], np.asarray(sums["neg_hist_kind"])[i])
    return out
