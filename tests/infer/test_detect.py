"""Detection helpers: ROI parsing, input collection, output stems, scores and renderings (no JAX)."""

import numpy as np
import pytest

from mantra_jax.infer.detect import (Roi, collect_inputs, heatmap, image_scores, overlay, parse_roi,
                                     unique_stems, write_outputs)


def test_parse_roi_reads_four_integers_and_rejects_others():
    assert parse_roi("1, 2,30,40") == Roi(1, 2, 30, 40)
    for bad in ("1,2,3", "a,b,c,d", "-1,0,3,3", "0,0,0,3"):
        with pytest.raises(ValueError, match="ROI"):
            parse_roi(bad)


def test_roi_crop_checks_the_image_bounds():
    img = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    np.testing.assert_array_equal(Roi(1, 2, 3, 2).crop(img), img[2:4, 1:4])
    with pytest.raises(ValueError, match="outside"):
        Roi(4, 0, 3, 2).crop(img)


def test_collect_inputs_expands_folders_and_globs_without_duplicates(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.JPG").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.png").write_bytes(b"x")
    paths, problems = collect_inputs([str(tmp_path), str(tmp_path / "*.png"), str(tmp_path / "notes.txt"),
                                      str(tmp_path / "missing.png"), str(tmp_path / "*.gif")])
    assert [p.name for p in paths] == ["a.png", "b.JPG", "notes.txt"]
    assert len(problems) == 2 and "missing.png" in problems[0] and "matches no file" in problems[1]
    deep, _ = collect_inputs([str(tmp_path)], recursive=True)
    assert sorted(p.name for p in deep) == ["a.png", "b.JPG", "c.png"]


def test_unique_stems_number_repeats_in_input_order(tmp_path):
    from pathlib import Path
    assert unique_stems([Path("x/a.png"), Path("y/a.jpg"), Path("b.png"), Path("z/A.png")]) == \
        ["a", "a_1", "b", "A_2"]


def test_image_scores_are_mean_max_and_99th_percentile():
    p = np.random.default_rng(0).uniform(size=(30, 40)).astype(np.float32)
    s = image_scores(p)
    assert s["score_mean"] == pytest.approx(p.astype(np.float64).mean(), abs=1e-12)
    assert s["score_max"] == pytest.approx(float(p.max()))
    assert s["score_p99"] == pytest.approx(np.percentile(p.astype(np.float64), 99))


def test_heatmap_maps_zero_to_blue_and_one_to_red():
    h = heatmap(np.array([[0.0, 1.0]], np.float32))
    assert h.dtype == np.uint8 and h.shape == (1, 2, 3)
    assert h[0, 0, 2] > h[0, 0, 0] and h[0, 1, 0] > h[0, 1, 2]


def test_overlay_keeps_size_and_rejects_mismatched_maps():
    img = np.full((4, 5, 3), 100, np.uint8)
    assert overlay(img, np.zeros((4, 5), np.float32)).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="differ"):
        overlay(img, np.zeros((5, 4), np.float32))


def test_write_outputs_writes_npy_and_two_pngs(tmp_path):
    from mantra_jax.io.images import read_image
    p = np.linspace(0, 1, 12 * 10, dtype=np.float32).reshape(12, 10)
    names = write_outputs(tmp_path, "s", np.zeros((12, 10, 3), np.uint8), p)
    np.testing.assert_array_equal(np.load(tmp_path / names["npy"]), p)
    assert read_image(tmp_path / names["overlay"]).shape == (12, 10, 3)
    assert read_image(tmp_path / names["heatmap"]).shape == (12, 10, 3)
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def test_overlay_by_row_bands_equals_the_whole_image_blend(monkeypatch):
    import mantra_jax.infer.detect as detect

    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (600, 7, 3), dtype=np.uint8)  # over two bands of 256 rows
    prob = rng.random((600, 7), dtype=np.float32)
    banded = overlay(img, prob)
    monkeypatch.setattr(detect, "OVERLAY_BAND_ROWS", 10 ** 6)
    np.testing.assert_array_equal(banded, overlay(img, prob))
    # and the blend itself, in float64: at most 1 apart (float32 rounding near half-integers)
    alpha = 0.25 + 0.6 * prob.astype(np.float64)[..., None]
    ref = np.rint((1 - alpha) * img + alpha * heatmap(prob).astype(np.float64))
    assert np.abs(banded.astype(np.float64) - ref).max() <= 1
