"""Sensitivity study: enhancement forgery sets per manipulation type, scored with a fake detector."""

import numpy as np
import pytest
from PIL import Image

from mantra_jax.eval.sensitivity import forgery_set, plot_study, study

PATCHES = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)


def test_forgery_set_changes_only_masked_pixels_and_is_reproducible():
    m = _first("GaussianNoise")
    images, masks = forgery_set(PATCHES, m, seed=1)
    again, masks2 = forgery_set(PATCHES, m, seed=1)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(masks, masks2)
    assert masks.dtype == bool and masks.any(axis=(1, 2)).all()
    np.testing.assert_array_equal(images[~masks], PATCHES[~masks])
    assert (images[masks] != PATCHES[masks]).any()


def test_forgery_set_rejects_bad_patches():
    with pytest.raises(ValueError, match="uint8"):
        forgery_set(PATCHES.astype(np.float32), _first("GaussianBlur"))


def test_study_scores_a_detector_that_sees_the_change(tmp_path):
    types = [_first("GaussianNoise"), _first("BoxBlur")]
    oracle = {}

    def predict(image):  # a detector that knows the pristine patch: |change| as probability
        k = oracle["k"] = (oracle.get("k", -1) + 1) % len(PATCHES)
        return (np.abs(image.astype(np.float32) - PATCHES[k]).mean(axis=-1) > 0).astype(np.float32)

    rows = study(PATCHES, types, predict, seed=0)
    assert [r["name"] for r in rows] == [t.name for t in types]
    assert rows[0]["n_images"] == 3 and rows[0]["pixel_auc"] > 0.9 and rows[0]["mean_abs_change"] > 0
    plot_study(rows, tmp_path / "s.png")
    assert Image.open(tmp_path / "s.png").format == "PNG"


def _first(family):
    from mantra_jax.manipulations import CATALOGUE
    return next(m for m in CATALOGUE if m.family == family)
