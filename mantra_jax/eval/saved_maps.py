"""What ``mantra eval`` keeps of each scored image's map, so a report can show it without the model.

One small ``.npz`` per scored image, ``maps/<id>.npz`` (``map_name``: ``id`` from the pair's key), with:

* ``image`` (h, w, 3) uint8 RGB (stored as JPEG bytes, quality 90, ``image_jpeg``), ``prob`` (h, w) uint8 (``rint(255 p)`` of the area-averaged map), ``mask``
  (h, w) bool (all False for an authentic image) and ``outcome`` (h, w) uint8, the fixed-threshold
  classes computed at full resolution then shrunk by nearest neighbour: ``TN`` 0, ``TP`` 1, ``FP`` 2,
  ``FN`` 3 (a pixel is predicted forged when ``p >= FIXED_THRESHOLD``); h, w fit ``THUMB_SIDE``;
* ``hist`` (2, HIST_BINS) int64: full-resolution pixel counts of the map in ``HIST_BINS`` equal bins of
  [0, 1] (bin ``min(floor(HIST_BINS p), HIST_BINS - 1)``), row 0 the authentic pixels of the mask, row 1
  the forged ones. Summed over images, they give the pooled ROC and precision-recall curves
  (``pooled_curves``) exactly for the scores quantised to their bins.

Written atomically, read back without pickle (``load_map`` checks every array's dtype and shape).
"""

from __future__ import annotations

import hashlib
import pathlib
from typing import Any, Sequence

import cv2
import numpy as np

from mantra_jax.eval.metrics import FIXED_THRESHOLD
from mantra_jax.io.atomic import write_atomic
from mantra_jax.io.thumbnails import THUMB_SIDE, fit_size, shrink

MAP_DIR = "maps"
HIST_BINS = 1000
TN, TP, FP, FN = 0, 1, 2, 3
_KEYS = ("image_jpeg", "prob", "mask", "outcome", "hist")
JPEG_QUALITY = 90


def map_name(key: str) -> str:
    """The saved map of the pair with progress-log key ``key``: ``maps/<20 hex digits>.npz``."""
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return f"{MAP_DIR}/{digest}.npz"


def outcome_classes(prob: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W) uint8 classes TN / TP / FP / FN of ``prob >= FIXED_THRESHOLD`` against bool ``mask``."""
    pred = np.asarray(prob) >= FIXED_THRESHOLD
    m = np.asarray(mask, bool)
    out = np.full(pred.shape, TN, np.uint8)
    out[pred & m] = TP
    out[pred & ~m] = FP
    out[~pred & m] = FN
    return out


def score_histogram(prob: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(2, HIST_BINS) int64 counts of ``prob`` (H, W) in [0, 1]: row 0 where ``mask`` is False, row 1 True."""
    p = np.asarray(prob, np.float64).ravel()
    m = np.asarray(mask, bool).ravel()
    if p.shape != m.shape:
        raise ValueError(f"score_histogram: prob {np.shape(prob)} and mask {np.shape(mask)} differ")
    bins = np.minimum(np.floor(p * HIST_BINS).astype(np.int64), HIST_BINS - 1)
    return np.stack([np.bincount(bins[~m], minlength=HIST_BINS),
                     np.bincount(bins[m], minlength=HIST_BINS)]).astype(np.int64)


def map_arrays(image: np.ndarray, prob: np.ndarray, mask: np.ndarray | None,
               max_side: int = THUMB_SIDE) -> dict[str, np.ndarray]:
    """The arrays saved for one image (module docstring). image (H, W, 3) uint8, prob (H, W) in [0, 1],
    mask bool (H, W) or None (authentic)."""
    p = np.asarray(prob, np.float32)
    if p.ndim != 2 or np.shape(image)[:2] != p.shape or np.ndim(image) != 3:
        raise ValueError(f"map_arrays: image {np.shape(image)} and map {p.shape} must be (H, W, 3) and (H, W)")
    m = np.zeros(p.shape, bool) if mask is None else np.asarray(mask, bool)
    if m.shape != p.shape:
        raise ValueError(f"map_arrays: mask {m.shape} and map {p.shape} differ")
    size = fit_size(p.shape[0], p.shape[1], max_side)
    small = np.clip(shrink(p, size), 0.0, 1.0)
    return {"image_jpeg": _jpeg(shrink(np.asarray(image, np.uint8), size)),
            "prob": np.rint(small * 255.0).astype(np.uint8),
            "mask": shrink(m, size, labels=True),
            "outcome": shrink(outcome_classes(p, m), size, labels=True),
            "hist": score_histogram(p, m)}


def _jpeg(rgb: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("map_arrays: OpenCV could not encode the image thumbnail")
    return np.asarray(data, np.uint8).ravel()


def save_map(path: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """Writes ``arrays`` (``map_arrays``) to ``path`` as a compressed ``.npz``, atomically."""
    write_atomic(path, lambda f: np.savez_compressed(f, **{k: arrays[k] for k in _KEYS}))


def load_map(path: pathlib.Path) -> dict[str, np.ndarray]:
    """The arrays of a saved map, checked, with ``image`` (h, w, 3) uint8 RGB decoded from ``image_jpeg``;
    ValueError naming the file when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in _KEYS}
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{path}: not a saved map ({e})") from None
    h, w = arrays["prob"].shape[:2] if arrays["prob"].ndim == 2 else (0, 0)
    jpeg = arrays.pop("image_jpeg")
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if jpeg.dtype == np.uint8 and jpeg.ndim == 1 else None
    arrays["image"] = np.zeros((0, 0, 3), np.uint8) if decoded is None else decoded[:, :, ::-1].copy()
    want = {"image": (np.uint8, (h, w, 3)), "prob": (np.uint8, (h, w)), "mask": (np.bool_, (h, w)),
            "outcome": (np.uint8, (h, w)), "hist": (np.int64, (2, HIST_BINS))}
    for k, (dtype, shape) in want.items():
        if arrays[k].dtype != dtype or arrays[k].shape != shape or not h:
            raise ValueError(f"{path}: {k} is {arrays[k].dtype} {arrays[k].shape}, expected {np.dtype(dtype)} {shape}")
    return arrays


def pooled_curves(hists: Sequence[np.ndarray]) -> dict[str, Any]:
    """Pooled ROC and precision-recall curves of summed (2, HIST_BINS) histograms (images with a forged
    pixel only, as the pixel metrics).

    Thresholds ``t_i = i / HIST_BINS`` for i = HIST_BINS ... 0 (predicted forged: bin >= i). Returns
    ``fpr``, ``tpr``, ``precision``, ``recall`` (float64 arrays, from nothing predicted to everything),
    ``auc`` (trapezoidal ROC area, ties within a bin counted one half), ``n_images``, ``n_pos``, ``n_neg``.
    """
    used = [h for h in hists if h[1].sum() > 0]
    total = np.sum(used, axis=0) if used else np.zeros((2, HIST_BINS), np.int64)
    neg, pos = total[0].astype(np.float64), total[1].astype(np.float64)
    n_neg, n_pos = float(neg.sum()), float(pos.sum())
    # predicted forged at threshold index i: bins >= i; i from HIST_BINS (none) down to 0 (all)
    tp = np.concatenate([[0.0], np.cumsum(pos[::-1])])
    fp = np.concatenate([[0.0], np.cumsum(neg[::-1])])
    tpr = tp / n_pos if n_pos else np.full_like(tp, np.nan)
    fpr = fp / n_neg if n_neg else np.full_like(fp, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0) if n_pos and n_neg else None
    return {"fpr": fpr, "tpr": tpr, "precision": precision, "recall": tpr, "auc": auc,
            "n_images": len(used), "n_pos": int(n_pos), "n_neg": int(n_neg)}
