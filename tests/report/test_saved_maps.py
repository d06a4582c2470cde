"""The maps ``mantra eval`` keeps for the report: histograms, pooled curves, outcome classes, thumbnails."""

import math

import numpy as np
import pytest

from mantra_jax.eval import saved_maps as sm
from mantra_jax.eval.metrics import roc_auc
from mantra_jax.io.thumbnails import THUMB_SIDE, fit_size, shrink, thumbnail


def _case(seed, h=37, w=53):
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), bool)
    mask[5:20, 10:30] = True
    prob = np.clip(rng.normal(0.3, 0.2, (h, w)) + 0.4 * mask, 0, 1).astype(np.float32)
    prob[0, :4] = [0.0, 1.0, 0.5, 0.999]  # the edges of the bins
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return image, prob, mask


def test_score_histogram_counts_each_pixel_in_its_bin():
    _, prob, mask = _case(0)
    hist = sm.score_histogram(prob, mask)
    p = prob.astype(np.float64)
    want = np.zeros((2, sm.HIST_BINS), np.int64)  # reference: one pixel at a time
    for v, m in zip(p.ravel(), mask.ravel()):
        want[int(m), min(int(math.floor(v * sm.HIST_BINS)), sm.HIST_BINS - 1)] += 1
    assert hist.dtype == np.int64 and np.array_equal(hist, want)
    assert hist[1].sum() == mask.sum() and hist[0].sum() == (~mask).sum()


def test_pooled_auc_is_the_exact_auc_of_the_binned_scores_of_the_forged_images():
    cases = [_case(s) for s in range(3)]
    authentic = sm.score_histogram(cases[0][1], np.zeros_like(cases[0][2]))  # no forged pixel: left out
    curves = sm.pooled_curves([sm.score_histogram(p, m) for _, p, m in cases] + [authentic])
    binned = np.concatenate([np.minimum(np.floor(p.astype(np.float64) * sm.HIST_BINS), sm.HIST_BINS - 1).ravel()
                             for _, p, _ in cases])
    labels = np.concatenate([m.ravel() for _, _, m in cases])
    # both are the trapezoidal ROC area over the same thresholds (ties count 1/2): equal to rounding
    assert curves["auc"] == pytest.approx(roc_auc(binned, labels), abs=1e-12)
    assert curves["n_images"] == 3 and curves["n_pos"] == labels.sum() and curves["n_neg"] == (~labels).sum()
    # the point at threshold 0.5 (index HIST_BINS / 2 from the top): rates of p >= 0.5
    pred = np.concatenate([(p >= 0.5).ravel() for _, p, _ in cases])
    k = sm.HIST_BINS // 2
    assert curves["tpr"][k] == pytest.approx((pred & labels).sum() / labels.sum(), abs=1e-15)
    assert curves["fpr"][k] == pytest.approx((pred & ~labels).sum() / (~labels).sum(), abs=1e-15)
    assert curves["precision"][k] == pytest.approx((pred & labels).sum() / pred.sum(), abs=1e-15)
    assert curves["tpr"][0] == curves["fpr"][0] == 0.0 and curves["tpr"][-1] == curves["fpr"][-1] == 1.0


def test_pooled_curves_without_a_forged_image_have_no_auc():
    _, prob, mask = _case(1)
    assert sm.pooled_curves([sm.score_histogram(prob, np.zeros_like(mask))])["auc"] is None
    assert sm.pooled_curves([])["auc"] is None


def test_outcome_classes_at_the_fixed_threshold():
    prob = np.array([[0.49999, 0.5, 0.9, 0.1]], np.float32)
    mask = np.array([[True, True, False, False]])
    assert sm.outcome_classes(prob, mask).tolist() == [[sm.FN, sm.TP, sm.FP, sm.TN]]


def test_saved_map_round_trip_is_bounded_and_checked(tmp_path):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (300, 1000, 3), dtype=np.uint8)
    prob = rng.random((300, 1000)).astype(np.float32)
    mask = prob > 0.8
    path = tmp_path / "m.npz"
    sm.save_map(path, sm.map_arrays(image, prob, mask))
    back = sm.load_map(path)
    assert back["prob"].shape == (58, THUMB_SIDE) == back["image"].shape[:2] == back["mask"].shape
    assert np.array_equal(back["hist"], sm.score_histogram(prob, mask))  # full resolution, not the thumbnail
    assert set(np.unique(back["outcome"])) <= {sm.TN, sm.TP, sm.FP, sm.FN}
    bad = tmp_path / "bad.npz"
    np.savez(bad, image_jpeg=np.zeros(3, np.uint8), prob=np.zeros((4, 4), np.float32),
             mask=np.zeros((4, 4), bool), outcome=np.zeros((4, 4), np.uint8), hist=np.zeros((2, 1000), np.int64))
    with pytest.raises(ValueError, match="bad.npz"):
        sm.load_map(bad)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, image_jpeg=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="not a saved map"):
        sm.load_map(pickled)


def test_thumbnails_never_exceed_the_side_and_never_enlarge():
    assert fit_size(4000, 3000) == (THUMB_SIDE, 144) and fit_size(10, 20) == (10, 20)
    big = np.zeros((5000, 120, 3), np.uint8)
    assert max(thumbnail(big).shape[:2]) == THUMB_SIDE
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4).repeat(10, 0).repeat(10, 1)
    assert set(np.unique(shrink(labels, (3, 4), labels=True))) == set(range(12))  # nearest: no new label
    with pytest.raises(ValueError, match="never enlarges"):
        shrink(big, (6000, 200))
