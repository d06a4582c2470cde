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


def test_auc_per_kind_matches_the_auc_of_that_kind_alone():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 8, 8, 1)).astype(np.float32)
    mask = (rng.uniform(size=(6, 8, 8, 1)) < 0.4).astype(np.float32)
    kind = np.array([0, 1, 0, 2, 1, 0], np.int32)
    sums = jax.device_get(pixel_batch_sums(logits, mask, kind, 3))
    out = summarize_pixels(sums, ["a", "b", "c"])
    for i, name in enumerate("abc"):
        alone = jax.device_get(pixel_batch_sums(logits[kind == i], mask[kind == i], kind[kind == i], 3))
        assert out[f"auc/{name}"] == histogram_auc(alone["pos_hist"], alone["neg_hist"])


def test_nan_logits_are_always_wrong_in_f1_counts_and_auc_histograms():
    import jax.numpy as jnp

    from mantra_jax.train.pixel_metrics import pixel_batch_sums

    mask = np.array([1, 0, 1, 0], np.float32).reshape(1, 2, 2, 1)
    logits = np.array([np.nan, np.nan, 3.0, -3.0], np.float32).reshape(1, 2, 2, 1)
    s = pixel_batch_sums(jnp.asarray(logits), jnp.asarray(mask), jnp.asarray([0]), 1, bins=4)
    assert (int(s["tp"][0]), int(s["fp"][0]), int(s["fn"][0])) == (1, 1, 1)  # NaN: one FN and one FP
    np.testing.assert_array_equal(s["pos_hist"], [1, 0, 0, 1])  # the NaN forged pixel ranks lowest
    np.testing.assert_array_equal(s["neg_hist"], [1, 0, 0, 1])  # the NaN pristine pixel ranks highest
