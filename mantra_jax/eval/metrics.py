"""Forgery-localisation metrics: exact pixel AUC, F1 and IoU per image, image-level AUC, and a summary.

Numpy only (no scikit-learn at run time); everything is computed in float64 from integer counts.

Conventions (also returned, in words, by :func:`evaluate` under ``conventions``):

* Scores are probabilities ``p`` in [0, 1] of a pixel being forged; masks are bool, True = forged.
* ``roc_auc`` is exact: the scores of each class are sorted once, and binary searches count, for every
  positive, the negatives below it and tied with it; the integer sum of ``2 * below + tied`` over the
  positives is ``2 * P * N * AUC`` (Mann-Whitney with ties counted one half, equal to the trapezoidal
  ROC area of ``sklearn.metrics.roc_auc_score``). It is NaN when only one class is present. Two sorts
  of the class subsets replace an arg-sort and gathers of the whole map (faster; measured: README, Benchmarks).
* Paper protocol (ManTra-Net, CVPR 2019, Sec. 5, after [28]): the predicted map is negated when more
  than 50 % of the ground-truth pixels are forged (exactly 50 % is not negated). Negating the scores maps
  an AUC ``a`` to exactly ``1 - a`` (ties included), which is how it is computed here.
* A pixel is predicted forged when ``p >= threshold`` (the ``precision_recall_curve`` convention). F1 at
  the fixed threshold 0.5; best F1 over all distinct thresholds of the image (oracle threshold per
  image, including "nothing predicted", F1 = 0); inverted F1 = max(F1 of p, F1 of 1 - p) at 0.5; IoU
  (Jaccard) at 0.5. F1 and IoU are 0 when nothing is predicted and something is forged.
* Image score = mean of ``p`` over the image; image label = forged (the mask has a forged pixel,
  unless given explicitly). Image AUC is defined only when both labels are present, else None.
* Pixel metrics are macro averages over images. Authentic images (no forged pixel) have no pixel
  metrics (all-negative ground truth) and count only in the image AUC. A forged image whose pixels
  are all forged has F1/IoU but no AUC, and is left out of the two AUC means only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

FIXED_THRESHOLD = 0.5

SUMMARY_KEYS = (
    "pixel_auc",
    "pixel_auc_paper",
    "pixel_f1_fixed",
    "pixel_f1_best",
    "pixel_f1_inverted",
    "pixel_iou",
    "image_auc",
    "n_images",
)


def _as_scores(scores: Any, name: str) -> np.ndarray:
    """Real scores; float dtypes are kept (ordering and ties are dtype independent), others -> float64."""
    arr = np.asarray(scores)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _as_labels(labels: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape} (same as the scores)")
    if arr.dtype == np.bool_:
        return arr
    if np.issubdtype(arr.dtype, np.integer) and np.all((arr == 0) | (arr == 1)):
        return arr.astype(np.bool_)
    raise ValueError(f"{name} must be bool or 0/1 integers, got dtype {arr.dtype} with other values; "
                     "binarise masks first (mantra_jax.eval.pairs.load_mask)")


@dataclasses.dataclass(frozen=True)
class _Ranked:
    """Scores split by class and sorted: enough for the exact AUC and the best F1.

    values: distinct positive scores, ascending (K,); pos_at_least: # positives >= each value (K,);
    neg_below / neg_equal: # negatives < / == each value (K,). All counts int64.
    """

    n_pos: int
    n_neg: int
    values: np.ndarray
    pos_count: np.ndarray  # # positives equal to each value
    pos_at_least: np.ndarray
    neg_below: np.ndarray
    neg_equal: np.ndarray


def _rank(scores: np.ndarray, labels: np.ndarray) -> _Ranked:
    """Two sorts (one per class) and binary searches; no arg-sort or gathers of the full map."""
    pos = np.sort(scores[labels], kind="quicksort")
    neg = np.sort(scores[~labels], kind="quicksort")
    if pos.size:
        starts = np.concatenate([[0], np.flatnonzero(pos[1:] != pos[:-1]) + 1])
    else:
        starts = np.zeros(0, np.int64)
    values = pos[starts]
    pos_count = np.diff(np.concatenate([starts, [pos.size]])).astype(np.int64)
    neg_below = np.searchsorted(neg, values, side="left").astype(np.int64)
    neg_equal = np.searchsorted(neg, values, side="right").astype(np.int64) - neg_below
    return _Ranked(int(pos.size), int(neg.size), values, pos_count,
                   (pos.size - starts).astype(np.int64), neg_below, neg_equal)


def _auc_twice_numerator(r: _Ranked) -> int:
    """2 * P * N * AUC as an exact integer: sum over positives of 2 * #(neg below) + #(neg tied)."""
    return int(np.sum(r.pos_count * (2 * r.neg_below + r.neg_equal)))


def _best_f1(r: _Ranked) -> float:
    """Max F1 of ``score >= t`` over all t. An optimal t is always a positive's score: between two
    positive values, raising t to the next one keeps every true positive and drops false positives."""
    if r.n_pos == 0:
        return math.nan
    tp = r.pos_at_least
    fp = r.n_neg - r.neg_below
    return float(np.max(2.0 * tp / (tp + fp + r.n_pos)))


def roc_auc(scores: Any, labels: Any) -> float:
    """Exact area under the ROC curve; ties count one half (as ``sklearn.metrics.roc_auc_score``).

    Args:
      scores: real array of any shape (flattened), finite; higher = more likely positive.
      labels: bool (or 0/1 integer) array of the same shape; True = positive.

    Returns:
      The AUC in [0, 1], or NaN when all labels are equal (AUC undefined).
    """
    s = _as_scores(scores, "scores").ravel()
    y = _as_labels(labels, np.shape(scores), "labels").ravel()
    if s.size == 0:
        raise ValueError("roc_auc needs at least one score")
    n_pos = int(np.count_nonzero(y))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    return _auc_twice_numerator(_rank(s, y)) / (2 * n_pos * n_neg)


def _binary_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(truth)) - tp
    return tp, fp, fn


def _f1(tp: int, fp: int, fn: int) -> float:
    denom = 2 * tp + fp + fn
    return 2 * tp / denom if denom else math.nan


def _iou(tp: int, fp: int, fn: int) -> float:
    denom = tp + fp + fn
    return tp / denom if denom else math.nan


def _check_map(prob: Any, mask: Any | None) -> tuple[np.ndarray, np.ndarray | None]:
    p = _as_scores(prob, "prob")
    if p.ndim != 2 or p.size == 0:
        raise ValueError(f"prob must be a non-empty (H, W) map, got shape {p.shape}")
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError(f"prob must lie in [0, 1], got range [{p.min():.6g}, {p.max():.6g}]")
    if mask is None:
        return p, None
    m = np.asarray(mask)
    if m.shape != p.shape:
        raise ValueError(f"mask has shape {m.shape} but prob has shape {p.shape}; "
                         "resize the mask (nearest neighbour) or the map first")
    if m.dtype != np.bool_:
        raise ValueError(f"mask must be a bool (H, W) array, got dtype {m.dtype}; binarise it first")
    return p, m


def pixel_auc(prob: Any, mask: Any, paper_protocol: bool = False) -> float:
    """Pixel AUC of one map against its mask. prob (H, W) in [0, 1]; mask bool (H, W).

    With ``paper_protocol`` the map is negated (AUC -> 1 - AUC, exact with ties) when more than half of
    the mask is forged. NaN when the mask has a single class.
    """
    p, m = _check_map(prob, mask)
    n_pos = int(np.count_nonzero(m))
    n_neg = m.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    twice = _auc_twice_numerator(_rank(p.ravel(), m.ravel()))
    if paper_protocol and 2 * n_pos > m.size:
        twice = 2 * n_pos * n_neg - twice
    return twice / (2 * n_pos * n_neg)


@dataclasses.dataclass(frozen=True)
class ImageMetrics:
    """Metrics of one image. Pixel fields are NaN where undefined (see the module docstring)."""

    name: str
    forged: bool  # image label for the image AUC
    n_pixels: int
    forged_fraction: float  # fraction of GT pixels that are forged (0 for authentic images)
    image_score: float  # mean of the map
    auc: float
    auc_paper: float
    negated: bool  # whether the paper protocol negated the map (never when the AUC is undefined)
    f1_fixed: float
    f1_best: float
    f1_inverted: float
    iou: float


def image_metrics(prob: Any, mask: Any | None, *, name: str = "",
                  forged: bool | None = None) -> ImageMetrics:
    """All per-image metrics of one map (one sort per class).

    Args:
      prob: (H, W) probabilities in [0, 1], any real dtype (floats are ranked in their own dtype, which
        preserves order and ties; 1 - p, means and ratios are computed in float64).
      mask: (H, W) bool ground truth (True = forged), or None for an authentic image.
      name: identifier kept with the result.
      forged: image label for the image AUC; default: the mask has a forged pixel.
    """
    p, m = _check_map(prob, mask)
    n = p.size
    n_pos = 0 if m is None else int(np.count_nonzero(m))
    label = bool(n_pos > 0) if forged is None else bool(forged)
    score = float(np.mean(p, dtype=np.float64))
    nan = math.nan
    if n_pos == 0:
        return ImageMetrics(name, label, n, 0.0, score, nan, nan, False, nan, nan, nan, nan)
    assert m is not None
    n_neg = n - n_pos
    negated = 2 * n_pos > n and n_neg > 0  # an all-forged mask has no AUC: nothing is negated
    ranked = _rank(p.ravel(), m.ravel())
    f1_best = _best_f1(ranked)
    if n_neg > 0:
        twice = _auc_twice_numerator(ranked)
        auc = twice / (2 * n_pos * n_neg)
        auc_paper = (2 * n_pos * n_neg - twice) / (2 * n_pos * n_neg) if negated else auc
    else:
        auc = auc_paper = nan
    counts = _binary_counts(p >= FIXED_THRESHOLD, m)
    f1_fixed = _f1(*counts)
    inverted = (1.0 - p.astype(np.float64, copy=False)) >= FIXED_THRESHOLD
    f1_inv = max(f1_fixed, _f1(*_binary_counts(inverted, m)))
    return ImageMetrics(name, label, n, n_pos / n, score, auc, auc_paper, negated, f1_fixed, f1_best,
                        f1_inv, _iou(*counts))


def image_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Image-level AUC of per-image scores (label True = forged); None unless both labels occur."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.bool_)
    if s.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {s.shape} and {y.shape}")
    if s.size == 0 or y.all() or not y.any():
        return None
    return roc_auc(s, y)


def _mean(values: list[float]) -> float | None:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else None


def evaluate(per_image_results: Iterable[ImageMetrics]) -> dict[str, Any]:
    """Summary over images: keys ``SUMMARY_KEYS`` plus ``conventions`` (key -> words).

    Values are floats in [0, 1] (None where no image qualifies), ``n_images`` an int.
    """
    results = list(per_image_results)
    for r in results:
        if not isinstance(r, ImageMetrics):
            raise ValueError(f"evaluate expects ImageMetrics (from image_metrics), got {type(r).__name__}")
    pixel = [r for r in results if r.forged_fraction > 0.0]
    with_auc = [r for r in pixel if not math.isnan(r.auc)]
    n_auth = sum(1 for r in results if r.forged_fraction == 0.0)
    n_pos_img = sum(1 for r in results if r.forged)
    out: dict[str, Any] = {
        "pixel_auc": _mean([r.auc for r in pixel]),
        "pixel_auc_paper": _mean([r.auc_paper for r in pixel]),
        "pixel_f1_fixed": _mean([r.f1_fixed for r in pixel]),
        "pixel_f1_best": _mean([r.f1_best for r in pixel]),
        "pixel_f1_inverted": _mean([r.f1_inverted for r in pixel]),
        "pixel_iou": _mean([r.iou for r in pixel]),
        "image_auc": image_auc([r.image_score for r in results], [r.forged for r in results]),
        "n_images": len(results),
    }
    n_neg = sum(1 for r in results if r.negated)  # the same count as the per-image rows
    out["conventions"] = {
        "pixel_auc": f"mean over {len(with_auc)} images with both classes in the mask of the exact "
                     "per-image ROC AUC (ties = 1/2) of the map against the mask",
        "pixel_auc_paper": "as pixel_auc, but the map is negated (AUC -> 1 - AUC) when more than 50% of "
                           f"the mask is forged (ManTra-Net Sec. 5); {n_neg} image(s) negated",
        "pixel_f1_fixed": f"mean over {len(pixel)} images with a forged pixel of F1 of (p >= 0.5)",
        "pixel_f1_best": "mean of per-image best F1 over all thresholds p >= t (oracle threshold per "
                         "image)",
        "pixel_f1_inverted": "mean of per-image max(F1 of p >= 0.5, F1 of 1 - p >= 0.5)",
        "pixel_iou": "mean of per-image IoU (Jaccard) of (p >= 0.5) with the mask",
        "image_auc": f"ROC AUC of the mean of p per image, label forged ({n_pos_img} forged, "
                     f"{len(results) - n_pos_img} not); None unless both labels occur",
        "n_images": f"all images evaluated: {len(pixel)} with forged pixels (pixel metrics), {n_auth} "
                    "with an empty mask (authentic: no pixel metrics, image_auc only)",
    }
    return out


class MetricsAccumulator:
    """Computes per-image metrics as maps arrive, so a benchmark never holds all maps at once.

    Keeps only the small ``ImageMetrics`` records (image scores included); ``summary()`` returns
    ``evaluate`` of them.
    """

    def __init__(self) -> None:
        self._results: list[ImageMetrics] = []

    def add(self, prob: Any, mask: Any | None, *, name: str = "",
            forged: bool | None = None) -> ImageMetrics:
        """Adds one image: prob (H, W) in [0, 1], mask bool (H, W) or None (authentic)."""
        result = image_metrics(prob, mask, name=name, forged=forged)
        self._results.append(result)
        return result

    def __len__(self) -> int:
        return len(self._results)

    @property
    def results(self) -> tuple[ImageMetrics, ...]:
        return tuple(self._results)

    def summary(self) -> dict[str, Any]:
        return evaluate(self._results)


DEFAULT_COLUMNS = SUMMARY_KEYS


def _format_value(value: Any, percent: bool, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{100.0 * value:.{digits}f}" if percent else f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str] = DEFAULT_COLUMNS,
                   *, percent: bool = True, digits: int = 1, label: str = "benchmark") -> str:
    """A markdown table, one row per entry of ``rows`` (e.g. benchmark name -> ``evaluate`` output).

    Floats are shown as percentages with ``digits`` decimals when ``percent`` (as in the paper's tables),
    None/NaN as ``n/a``, ints as they are. Missing keys raise ValueError.
    """
    if not rows:
        raise ValueError("markdown_table needs at least one row")
    header = [label, *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|"]
    for row_name, metrics in rows.items():
        missing = [c for c in columns if c not in metrics]
        if missing:
            raise ValueError(f"row {row_name!r} lacks column(s) {missing}")
        cells = [_format_value(metrics[c], percent, digits) for c in columns]
        lines.append("| " + " | ".join([str(row_name).replace("|", "\\|"), *cells]) + " |")
    return "\n".join(lines) + "\n"
