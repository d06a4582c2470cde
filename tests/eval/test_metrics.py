"""Metrics against scikit-learn (float64 references, tolerance 1e-12) and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")

from mantra_jax.eval import metrics  # noqa: E402

TOL = 1e-12


def _random_case(rng: np.random.Generator, shape=(23, 31), ties: bool = False, frac: float = 0.3):
    prob = rng.random(shape)
    if ties:
        prob = np.round(prob * 8) / 8  # many ties, values include 0, 0.5 and 1 exactly
    mask = rng.random(shape) < frac
    mask[0, 0], mask[0, 1] = True, False  # both classes present
    return prob, mask


def _sk_best_f1(prob: np.ndarray, mask: np.ndarray) -> float:
    precision, recall, _ = sklearn_metrics.precision_recall_curve(mask.ravel(), prob.ravel())
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * precision * recall / (precision + recall)
    return float(np.nanmax(f1))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_matches_sklearn(seed: int, ties: bool):
    prob, mask = _random_case(np.random.default_rng(seed), ties=ties)
    expected = sklearn_metrics.roc_auc_score(mask.ravel(), prob.ravel())
    assert abs(metrics.roc_auc(prob, mask) - expected) < TOL


def test_roc_auc_equals_mann_whitney_with_midranks():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, size=200).astype(np.float64)
    labels = rng.random(200) < 0.4
    pos, neg = scores[labels], scores[~labels]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert abs(metrics.roc_auc(scores, labels) - wins / (pos.size * neg.size)) < TOL


def test_roc_auc_is_nan_when_one_class_is_absent():
    assert math.isnan(metrics.roc_auc(np.array([0.1, 0.7]), np.array([True, True])))
    assert math.isnan(metrics.roc_auc(np.array([0.1, 0.7]), np.array([0, 0])))


def test_roc_auc_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        metrics.roc_auc(np.zeros(3), np.zeros(4, bool))
    with pytest.raises(ValueError, match="NaN"):
        metrics.roc_auc(np.array([0.1, np.nan]), np.array([True, False]))
    with pytest.raises(ValueError, match="0/1"):
        metrics.roc_auc(np.array([0.1, 0.2]), np.array([0, 255]))


@pytest.mark.parametrize("ties", [False, True])
def test_image_metrics_match_sklearn(ties: bool):
    prob, mask = _random_case(np.random.default_rng(4), ties=ties)
    r = metrics.image_metrics(prob, mask, name="x")
    y = mask.ravel()
    pred = prob.ravel() >= 0.5
    assert abs(r.auc - sklearn_metrics.roc_auc_score(y, prob.ravel())) < TOL
    assert r.auc_paper == r.auc and not r.negated  # 30 % forged: no negation
    assert abs(r.f1_fixed - sklearn_metrics.f1_score(y, pred)) < TOL
    assert abs(r.iou - sklearn_metrics.jaccard_score(y, pred)) < TOL
    assert abs(r.f1_best - _sk_best_f1(prob, mask)) < TOL
    f1_inv = max(sklearn_metrics.f1_score(y, pred), sklearn_metrics.f1_score(y, (1.0 - prob.ravel()) >= 0.5))
    assert abs(r.f1_inverted - f1_inv) < TOL
    assert abs(r.image_score - prob.mean()) < TOL
    assert r.forged and abs(r.forged_fraction - mask.mean()) < TOL


def test_best_f1_is_the_max_over_all_thresholds():
    prob, mask = _random_case(np.random.default_rng(5), shape=(9, 11), ties=True)
    brute = max(sklearn_metrics.f1_score(mask.ravel(), prob.ravel() >= t) for t in np.unique(prob))
    assert abs(metrics.image_metrics(prob, mask).f1_best - brute) < TOL


def test_paper_protocol_negates_when_most_pixels_are_forged():
    prob, mask = _random_case(np.random.default_rng(6), frac=0.8, ties=True)
    assert mask.mean() > 0.5
    r = metrics.image_metrics(prob, mask)
    expected = sklearn_metrics.roc_auc_score(mask.ravel(), -prob.ravel())
    assert r.negated
    assert abs(r.auc_paper - expected) < TOL
    assert abs(r.auc_paper - (1.0 - r.auc)) < TOL
    assert abs(metrics.pixel_auc(prob, mask, paper_protocol=True) - expected) < TOL
    assert abs(metrics.pixel_auc(1.0 - prob, mask, paper_protocol=True)
               - sklearn_metrics.roc_auc_score(mask.ravel(), prob.ravel())) < TOL


def test_paper_protocol_keeps_the_map_at_exactly_half():
    prob = np.array([[0.9, 0.8], [0.1, 0.2]])
    mask = np.array([[True, False], [True, False]])
    r = metrics.image_metrics(prob, mask)
    assert not r.negated and r.auc_paper == r.auc == 0.5


def test_perfect_and_inverted_maps():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    prob = mask.astype(np.float64)
    r = metrics.image_metrics(prob, mask)
    assert (r.auc, r.f1_fixed, r.f1_best, r.iou, r.f1_inverted) == (1.0, 1.0, 1.0, 1.0, 1.0)
    inv = metrics.image_metrics(1.0 - prob, mask)
    assert (inv.auc, inv.f1_fixed, inv.iou) == (0.0, 0.0, 0.0)
    assert inv.f1_inverted == 1.0 and inv.f1_best == pytest.approx(2 * 4 / (16 + 4), abs=TOL)


def test_nothing_predicted_gives_zero_f1():
    mask = np.zeros((3, 3), bool)
    mask[1, 1] = True
    r = metrics.image_metrics(np.full((3, 3), 0.2), mask)
    assert r.f1_fixed == 0.0 and r.iou == 0.0 and r.auc == 0.5


def test_authentic_image_has_only_an_image_score():
    r = metrics.image_metrics(np.full((2, 3), 0.25), None, name="au")
    assert not r.forged and r.image_score == 0.25
    assert all(math.isnan(v) for v in (r.auc, r.auc_paper, r.f1_fixed, r.f1_best, r.f1_inverted, r.iou))
    assert metrics.image_metrics(np.zeros((2, 3)), np.zeros((2, 3), bool)).forged is False


def test_fully_forged_image_has_f1_but_no_auc():
    r = metrics.image_metrics(np.array([[0.2, 0.9]]), np.array([[True, True]]))
    assert math.isnan(r.auc) and math.isnan(r.auc_paper)
    assert r.f1_best == 1.0 and r.f1_fixed == pytest.approx(2 / 3, abs=TOL)


def test_image_metrics_rejects_bad_maps():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.image_metrics(np.array([[1.5]]), None)
    with pytest.raises(ValueError, match="shape"):
        metrics.image_metrics(np.zeros((2, 2)), np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="bool"):
        metrics.image_metrics(np.zeros((2, 2)), np.full((2, 2), 255, np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        metrics.image_metrics(np.zeros((2, 2, 1)), None)


def test_image_auc_matches_sklearn_and_is_none_with_one_class():
    rng = np.random.default_rng(7)
    scores, labels = rng.random(40), rng.random(40) < 0.5
    assert abs(metrics.image_auc(scores, labels) - sklearn_metrics.roc_auc_score(labels, scores)) < TOL
    assert metrics.image_auc(scores, np.ones(40, bool)) is None
    assert metrics.image_auc([], []) is None


def test_accumulator_summary_averages_forged_images_and_scores_all():
    rng = np.random.default_rng(8)
    acc = metrics.MetricsAccumulator()
    forged = [_random_case(rng, frac=f, ties=True) for f in (0.2, 0.4, 0.7)]
    for i, (p, m) in enumerate(forged):
        acc.add(p, m, name=f"tp{i}")
    authentic = [rng.random((5, 6)) for _ in range(2)]
    for p in authentic:
        acc.add(p, None)
    s = acc.summary()
    assert set(s) == set(metrics.SUMMARY_KEYS) | {"conventions"}
    assert set(s["conventions"]) == set(metrics.SUMMARY_KEYS)
    assert s["n_images"] == 5 and len(acc) == 5
    aucs = [sklearn_metrics.roc_auc_score(m.ravel(), p.ravel()) for p, m in forged]
    assert abs(s["pixel_auc"] - np.mean(aucs)) < TOL
    paper = [aucs[0], aucs[1], 1.0 - aucs[2]]
    assert abs(s["pixel_auc_paper"] - np.mean(paper)) < TOL
    f1s = [sklearn_metrics.f1_score(m.ravel(), p.ravel() >= 0.5) for p, m in forged]
    assert abs(s["pixel_f1_fixed"] - np.mean(f1s)) < TOL
    scores = [p.mean() for p, _ in forged] + [p.mean() for p in authentic]
    expected_img = sklearn_metrics.roc_auc_score([1, 1, 1, 0, 0], scores)
    assert abs(s["image_auc"] - expected_img) < TOL
    assert s == metrics.evaluate(acc.results)


def test_evaluate_without_authentic_images_has_no_image_auc():
    p, m = _random_case(np.random.default_rng(9))
    s = metrics.evaluate([metrics.image_metrics(p, m)])
    assert s["image_auc"] is None and s["n_images"] == 1
    empty = metrics.evaluate([])
    assert empty["pixel_auc"] is None and empty["n_images"] == 0


def test_markdown_table_formats_percentages():
    p, m = _random_case(np.random.default_rng(10))
    s = metrics.evaluate([metrics.image_metrics(p, m)])
    table = metrics.markdown_table({"COVERAGE": s}, columns=("pixel_auc", "image_auc", "n_images"))
    lines = table.strip().split("\n")
    assert lines[0] == "| benchmark | pixel_auc | image_auc | n_images |"
    assert lines[2] == f"| COVERAGE | {100 * s['pixel_auc']:.1f} | n/a | 1 |"
    with pytest.raises(ValueError, match="lacks"):
        metrics.markdown_table({"x": {"pixel_auc": 0.5}})


def test_float32_maps_give_the_float64_results_of_their_values():
    prob, mask = _random_case(np.random.default_rng(11), ties=True)
    p32 = prob.astype(np.float32)
    r = metrics.image_metrics(p32, mask)
    p64 = p32.astype(np.float64)
    assert abs(r.auc - sklearn_metrics.roc_auc_score(mask.ravel(), p64.ravel())) < TOL
    assert abs(r.f1_best - _sk_best_f1(p64, mask)) < TOL
    assert abs(r.f1_inverted - max(sklearn_metrics.f1_score(mask.ravel(), p64.ravel() >= 0.5),
                                   sklearn_metrics.f1_score(mask.ravel(), (1 - p64.ravel()) >= 0.5))) < TOL
