"""Robustness attacks (numpy references) and the study loop with a fake detector (no JAX)."""

import cv2
import numpy as np
import pytest
from PIL import Image

from mantra_jax.eval.pairs import Pair
from mantra_jax.eval.robustness import (ATTACKS, edge_band, edge_blur, gaussian_blur, gaussian_noise, jpeg,
                                        parse_attacks, plot_robustness, resize, run_robustness)

RNG = np.random.default_rng(0)
IMG = RNG.integers(0, 256, (40, 50, 3), dtype=np.uint8)
MASK = np.zeros((40, 50), bool)
MASK[10:25, 15:35] = True


def test_resize_scales_image_bilinearly_and_mask_by_nearest_neighbour():
    out, m = resize(IMG, MASK, 0.5, RNG)
    assert out.shape == (20, 25, 3) and m.shape == (20, 25) and m.dtype == bool
    np.testing.assert_array_equal(out, cv2.resize(IMG, (25, 20), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(m, MASK[1::2, 1::2])
    with pytest.raises(ValueError, match="scale"):
        resize(IMG, MASK, 1.5, RNG)


def test_jpeg_matches_a_pillow_round_trip_closely_and_keeps_the_mask():
    out, m = jpeg(IMG, MASK, 90, RNG)
    assert m is MASK and out.shape == IMG.shape and out.dtype == np.uint8
    import io
    buf = io.BytesIO()
    Image.fromarray(IMG).save(buf, "JPEG", quality=90)
    ref = np.asarray(Image.open(buf))
    assert np.abs(out.astype(int) - ref).mean() < 2.0
    assert np.abs(jpeg(IMG, None, 50, RNG)[0].astype(int) - IMG).mean() > np.abs(out.astype(int) - IMG).mean()
    with pytest.raises(ValueError, match="quality"):
        jpeg(IMG, None, 101, RNG)


def test_gaussian_blur_is_opencvs_and_needs_an_odd_kernel():
    np.testing.assert_array_equal(gaussian_blur(IMG, None, 7, RNG)[0], cv2.GaussianBlur(IMG, (7, 7), 0))
    with pytest.raises(ValueError, match="odd"):
        gaussian_blur(IMG, None, 4, RNG)


def test_gaussian_noise_has_the_requested_std_and_is_reproducible():
    flat = np.full((200, 200, 3), 128, np.uint8)
    a, _ = gaussian_noise(flat, None, 11, np.random.default_rng(1))
    b, _ = gaussian_noise(flat, None, 11, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert abs(a.astype(np.float64).std() - 11) < 0.3
    assert abs(a.astype(np.float64).mean() - 128) < 0.2


def test_edge_blur_changes_only_the_band_around_the_mask_edge():
    out, m = edge_blur(IMG, MASK, 5, RNG)
    band = edge_band(MASK, 3)
    changed = np.any(out != IMG, axis=-1)
    assert m is MASK and changed.any() and not (changed & ~band).any()
    np.testing.assert_array_equal(out[band], cv2.GaussianBlur(IMG, (5, 5), 0)[band])
    assert band[10, 20] and band[9, 20] and not band[17, 25] and not band[0, 0]
    np.testing.assert_array_equal(edge_blur(IMG, None, 5, RNG)[0], IMG)


def test_parse_attacks_knows_the_ladders_and_rejects_unknown_names():
    assert list(parse_attacks("all")) == list(ATTACKS)
    assert parse_attacks("jpeg,resize", {"jpeg": [90, 70]}) == {"jpeg": (90, 70), "resize": ATTACKS["resize"].levels}
    with pytest.raises(ValueError, match="unknown attack"):
        parse_attacks("jpeg,sharpen")


@pytest.fixture
def bench(tmp_path):
    """Two forged images (red square on noise) and one authentic, with masks; a detector of redness."""
    pairs = []
    for k in range(3):
        img = np.random.default_rng(k).integers(0, 120, (32, 40, 3), dtype=np.uint8)
        path = tmp_path / f"im{k}.png"
        mask_path = None
        if k < 2:
            img[8:20, 10:26, 0] = 250
            mask = np.zeros((32, 40), np.uint8)
            mask[8:20, 10:26] = 255
            mask_path = tmp_path / f"im{k}_gt.png"
            Image.fromarray(mask).save(mask_path)
        Image.fromarray(img).save(path)
        pairs.append(Pair(path, mask_path))
    return pairs


def redness(image):
    return image[:, :, 0].astype(np.float32) / 255.0, False


def test_run_robustness_scores_the_clean_set_then_every_level(bench):
    rows = run_robustness(bench, redness, {"gaussian_noise": (3, 30), "resize": (0.5,)}, seed=0)
    assert [(r["attack"], r["level"]) for r in rows] == [("none", None), ("gaussian_noise", 3.0),
                                                          ("gaussian_noise", 30.0), ("resize", 0.5)]
    assert rows[0]["pixel_auc"] == 1.0 and rows[0]["n_images"] == 3 and rows[0]["n_failed"] == 0
    assert rows[2]["pixel_auc"] < rows[1]["pixel_auc"] <= 1.0
    again = run_robustness(bench, redness, {"gaussian_noise": (30,)}, seed=0)
    assert again[1]["pixel_auc"] == rows[2]["pixel_auc"]


def test_plot_robustness_writes_a_png(bench, tmp_path):
    rows = run_robustness(bench, redness, {"jpeg": (90, 50)})
    plot_robustness(rows, tmp_path / "r.png")
    assert Image.open(tmp_path / "r.png").format == "PNG"
