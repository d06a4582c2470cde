import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.eval.metrics import roc_auc
from mantra_jax.train.pixel_metrics import histogram_auc, pixel_batch_sums, summarize_pixels


def _batch(seed=0, b=6, s=8):
    rng = np.random.default_rng(seed)
    mask = (rng.uniform(size=(b, s, s, 1)) < 0.4).astype(np.float32)
    logits = (rng.normal(size=mask.shape) + 1.5 * (mask - 0.5)).astype(np.float32)
    kind = rng.integers(0, 3, b).astype(np.int32)
    return logits, mask, kind


def test_f1_per_kind_matches_numpy_reference():
    logits, mask, kind = _batch()
    sums = pixel_batch_sums(jnp.asarray(logits), jnp.asarray(mask), jnp.asarray(kind), 3)
    got = summarize_pixels({k: np.asarray(v) for k, v in sums.items()}, ("a", "b", "c"))
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    for i, name in enumerate("abc"):
        sel = kind == i
        pred, truth = p[sel] >= 0.5, mask[sel] > 0.5
        tp, fp, fn = (pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()
        ref = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else math.nan
        assert got[f"f1/{name}"] == pytest.approx(ref, nan_ok=True)
    pred, truth = p >= 0.5, mask > 0.5
    ref = 2 * (pred & truth).sum() / (2 * (pred & truth).sum() + (pred & ~truth).sum() + (~pred & truth).sum())
    assert got["f1/overall"] == pytest.approx(ref)


def test_histogram_auc_is_close_to_exact_auc():
    logits, mask, kind = _batch(1, b=8, s=16)
    sums = pixel_batch_sums(jnp.asarray(logits), jnp.asarray(mask), jnp.asarray(kind), 3)
    exact = roc_auc(1 / (1 + np.exp(-logits.astype(np.float64))).ravel(), mask.ravel() > 0.5)
    approx = histogram_auc(np.asarray(sums["pos_hist"]), np.asarray(sums["neg_hist"]))
    assert abs(approx - exact) < 2e-3  # 1024 bins: only pairs sharing a bin are approximated


def test_histogram_auc_is_exact_when_no_bin_is_shared():
    pos = np.zeros(10)
    neg = np.zeros(10)
    pos[[2, 7, 9]] = 1
    neg[[1, 3, 8]] = 1
    # positives above negatives: 2>1; 7>1,3; 9>1,3,8 -> 6 of 9 pairs
    assert histogram_auc(pos, neg) == pytest.approx(6 / 9)


def test_auc_is_nan_with_one_class_only():
    assert math.isnan(histogram_auc(np.ones(4), np.zeros(4)))


def test_counts_are_integers_and_sum_to_the_pixel_count():
    logits, mask, kind = _batch()
    sums = pixel_batch_sums(jnp.asarray(logits), jnp.asarray(mask), jnp.asarray(kind), 3, bins=16)
    assert all(v.dtype == jnp.int32 for v in sums.values())
    assert int(sums["pos_hist"].sum()) == int(mask.sum())
    assert int(sums["pos_hist"].sum() + sums["neg_hist"].sum()) == mask.size


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        pixel_batch_sums(jnp.zeros((2, 4, 4, 1)), jnp.zeros((2, 4, 4, 1)), jnp.zeros((3,), jnp.int32), 4)


def _mann_whitney_auc(scores: np.ndarray, forged: np.ndarray) -> float:
    """P(forged score > pristine score) + P(equal) / 2 over every (forged, pristine) pixel pair, float64."""
    pos, neg = scores[forged], scores[~forged]
    if pos.size == 0 or neg.size == 0:
        return math.nan
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def test_auc_overall_and_per_kind_equal_a_numpy_mann_whitney_count():
    # Scores at the centres of 16 bins: pixels in one bin have one score, so the histogram's "same bin
    # counts 1/2" is exactly Mann-Whitney's "tie counts 1/2", and the float32 sigmoid (within 1e-6 of the
    # centre) cannot cross a bin edge (1/32 away). Both sides are then (integer + half-integer count) /
    # (P * N), counts far below 2**53, so the two quotients are the same double: compared exactly.
    bins, kinds = 16, ("a", "b", "c", "unused")
    rng = np.random.default_rng(3)
    mask = rng.uniform(size=(6, 8, 8, 1)) < 0.4
    centre = (rng.integers(0, bins, mask.shape) + 0.5) / bins
    centre = np.clip(centre + np.where(mask, 2, -2) / bins, 0.5 / bins, 1 - 0.5 / bins)  # some signal
    logits = np.log(centre / (1 - centre)).astype(np.float32)
    kind = np.array([0, 1, 0, 2, 1, 0], np.int32)
    sums = jax.device_get(pixel_batch_sums(logits, mask.astype(np.float32), kind, len(kinds), bins=bins))
    out = summarize_pixels(sums, kinds)
    scores = 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert len(np.unique(scores)) == bins  # every bin used, one score each: ties abound
    assert out["auc"] == _mann_whitney_auc(scores.ravel(), mask.ravel())
    for i, name in enumerate(kinds):
        ref = _mann_whitney_auc(scores[kind == i].ravel(), mask[kind == i].ravel())
        assert out[f"auc/{name}"] == pytest.approx(ref, rel=0, abs=0, nan_ok=True), name
    assert math.isnan(out["auc/unused"]) and len({out[f"auc/{k}"] for k in "abc"}) == 3


def test_nan_logits_are_always_wrong_in_f1_counts_and_auc_histograms():
    import jax.numpy as jnp

    from mantra_jax.train.pixel_metrics import pixel_batch_sums

    mask = np.array([1, 0, 1, 0], np.float32).reshape(1, 2, 2, 1)
    logits = np.array([np.nan, np.nan, 3.0, -3.0], np.float32).reshape(1, 2, 2, 1)
    s = pixel_batch_sums(jnp.asarray(logits), jnp.asarray(mask), jnp.asarray([0]), 1, bins=4)
    assert (int(s["tp"][0]), int(s["fp"][0]), int(s["fn"][0])) == (1, 1, 1)  # NaN: one FN and one FP
    np.testing.assert_array_equal(s["pos_hist"], [1, 0, 0, 1])  # the NaN forged pixel ranks lowest
    np.testing.assert_array_equal(s["neg_hist"], [1, 0, 0, 1])  # the NaN pristine pixel ranks highest
