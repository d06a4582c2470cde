"""Pair listings (CSV, Tp/Gt folders, IMDL-BenCo JSON) and mask binarisation / resizing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mantra_jax.eval import pairs as P


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _rgb(path: Path, h: int = 4, w: int = 5) -> Path:
    return _png(path, np.full((h, w, 3), 90, np.uint8))


def test_csv_image_mask_resolves_relative_paths_and_empty_masks(tmp_path):
    _rgb(tmp_path / "img" / "a.png")
    _rgb(tmp_path / "img" / "b.png")
    _png(tmp_path / "gt" / "a.png", np.zeros((4, 5), np.uint8))
    (tmp_path / "list.csv").write_text("image,mask,extra\nimg/a.png,gt/a.png,1\nimg/b.png,,2\n")
    got = P.read_pairs_csv(tmp_path / "list.csv")
    assert got == [P.Pair(tmp_path / "img/a.png", tmp_path / "gt/a.png"),
                   P.Pair(tmp_path / "img/b.png", None)]
    assert got[1].authentic and not got[0].authentic


def test_csv_coverage_columns_give_tampered_and_original_pairs(tmp_path):
    for rel in ("tampered/1t.png", "original/1.png"):
        _rgb(tmp_path / rel)
    _png(tmp_path / "mask/1forged.png", np.zeros((4, 5), np.uint8))
    (tmp_path / "pairs.csv").write_text(
        "id,tampered,original,mask,width,height,mask_size_matches\n1,tampered/1t.png,original/1.png,"
        "mask/1forged.png,5,4,1\n")
    assert P.read_pairs(tmp_path / "pairs.csv") == [
        P.Pair(tmp_path / "tampered/1t.png", tmp_path / "mask/1forged.png"),
        P.Pair(tmp_path / "original/1.png", None)]


def test_csv_errors_are_clear(tmp_path):
    (tmp_path / "bad.csv").write_text("img,gt\na.png,b.png\n")
    with pytest.raises(P.PairsError, match="columns 'image,mask'"):
        P.read_pairs_csv(tmp_path / "bad.csv")
    (tmp_path / "missing.csv").write_text("image,mask\nnope.png,\n")
    with pytest.raises(P.PairsError, match="do not exist"):
        P.read_pairs_csv(tmp_path / "missing.csv")
    (tmp_path / "dup.csv").write_text("image,mask\na.png,\na.png,\n")
    with pytest.raises(P.PairsError, match="twice"):
        P.read_pairs_csv(tmp_path / "dup.csv", check_exists=False)
    with pytest.raises(P.PairsError, match="does not exist"):
        P.read_pairs_csv(tmp_path / "absent.csv")


def test_folders_pair_by_stem_with_mask_suffixes(tmp_path):
    for name in ("x1.jpg", "X2.tif", "x3.png"):
        _rgb(tmp_path / "Tp" / name)
    for name in ("x1_gt.png", "x2_mask.png", "x3.png"):
        _png(tmp_path / "Gt" / name, np.zeros((4, 5), np.uint8))
    _rgb(tmp_path / "Au" / "a.jpg")
    got = P.read_pairs(tmp_path)
    assert [(p.image.name, p.mask.name if p.mask else None) for p in got] == [
        ("X2.tif", "x2_mask.png"), ("x1.jpg", "x1_gt.png"), ("x3.png", "x3.png"), ("a.jpg", None)]


def test_folders_report_missing_and_ambiguous_masks(tmp_path):
    _rgb(tmp_path / "Tp" / "x1.png")
    _rgb(tmp_path / "Tp" / "x2.png")
    _png(tmp_path / "Gt" / "x1_gt.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(P.PairsError, match="no mask"):
        P.pairs_from_folders(tmp_path)
    assert [p.image.name for p in P.pairs_from_folders(tmp_path, missing_mask="skip")] == ["x1.png"]
    _png(tmp_path / "Gt" / "x1_mask.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(P.PairsError, match="both match"):
        P.pairs_from_folders(tmp_path, missing_mask="skip")
    with pytest.raises(P.PairsError, match="Tp/ and Gt/"):
        P.pairs_from_folders(tmp_path / "Tp")


def test_json_negative_means_authentic(tmp_path):
    _rgb(tmp_path / "t.png")
    _rgb(tmp_path / "a.png")
    _png(tmp_path / "m.png", np.zeros((4, 5), np.uint8))
    (tmp_path / "list.json").write_text(json.dumps([["t.png", "m.png"], ["a.png", "Negative"]]))
    assert P.read_pairs(tmp_path / "list.json") == [P.Pair(tmp_path / "t.png", tmp_path / "m.png"),
                                                     P.Pair(tmp_path / "a.png", None)]
    (tmp_path / "bad.json").write_text(json.dumps([["t.png"]]))
    with pytest.raises(P.PairsError, match="entry 0"):
        P.read_pairs_json(tmp_path / "bad.json")


def test_read_mask_binarises_gray_rgb_16bit_and_label_maps(tmp_path):
    gray = np.array([[0, 127, 128, 255]], np.uint8)
    expected = np.array([[False, False, True, True]])
    np.testing.assert_array_equal(P.read_mask(_png(tmp_path / "g.png", gray)), expected)
    np.testing.assert_array_equal(P.read_mask(tmp_path / "g.png", "dark"), ~expected)
    rgb = np.stack([gray] * 3, axis=-1)
    np.testing.assert_array_equal(P.read_mask(_png(tmp_path / "rgb.png", rgb)), expected)
    rgba = np.concatenate([rgb, np.zeros_like(rgb[..., :1])], axis=-1)  # alpha is ignored
    np.testing.assert_array_equal(P.read_mask(_png(tmp_path / "rgba.png", rgba)), expected)
    deep = (gray.astype(np.uint16) * 257)
    np.testing.assert_array_equal(P.read_mask(_png(tmp_path / "d.png", deep)), expected)
    labels = np.array([[0, 1, 1, 0]], np.uint8)
    np.testing.assert_array_equal(P.read_mask(_png(tmp_path / "l.png", labels)), labels.astype(bool))
    one_bit = np.array([[False, True, True, False]])
    np.testing.assert_array_equal(P.read_mask(_png(tmp_path / "b.png", one_bit)), one_bit)


def test_read_mask_green_rule_for_colour_coded_masks(tmp_path):
    colours = np.array([[[255, 0, 0], [0, 255, 0], [120, 40, 30], [40, 200, 60]]], np.uint8)
    np.testing.assert_array_equal(P.read_mask(_png(tmp_path / "c.png", colours), "green"),
                                  [[False, True, False, True]])


def test_read_mask_errors(tmp_path):
    with pytest.raises(P.PairsError, match="does not exist"):
        P.read_mask(tmp_path / "none.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(P.PairsError, match="cannot be read"):
        P.read_mask(tmp_path / "junk.png")
    _png(tmp_path / "m.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(P.PairsError, match="rule"):
        P.read_mask(tmp_path / "m.png", "red")  # type: ignore[arg-type]


def test_load_mask_resizes_with_nearest_and_flags_mismatch(tmp_path):
    small = np.zeros((2, 3), np.uint8)
    small[0, 1] = 255
    path = _png(tmp_path / "m.png", small)
    same = P.load_mask(path, (2, 3))
    assert same.size_matches and same.source_shape == (2, 3)
    resized = P.load_mask(path, (4, 6))
    assert not resized.size_matches and resized.source_shape == (2, 3)
    np.testing.assert_array_equal(resized.mask, np.repeat(np.repeat(small > 127, 2, 0), 2, 1))
    skipped = P.load_mask(path, (4, 6), on_mismatch="skip")
    assert skipped.mask is None and not skipped.size_matches
    with pytest.raises(P.PairsError, match="2x3 but its image is 4x6"):
        P.load_mask(path, (4, 6), on_mismatch="error")


def test_resize_nearest_matches_pillow_nearest():
    rng = np.random.default_rng(0)
    mask = (rng.random((7, 9)) < 0.5).astype(np.uint8) * 255
    for shape in ((13, 5), (3, 17), (7, 9)):
        ref = np.asarray(Image.fromarray(mask).resize((shape[1], shape[0]), Image.Resampling.NEAREST))
        np.testing.assert_array_equal(P.resize_nearest(mask, shape), ref)


def test_image_size_reads_the_header(tmp_path):
    assert P.image_size(_rgb(tmp_path / "x.png", 6, 11)) == (6, 11)


def test_real_coverage_pairs_csv(shared_data):
    got = P.read_pairs_csv(shared_data("coverage/pairs.csv"))
    assert len(got) == 200 and sum(p.authentic for p in got) == 100
    assert got[0].image.name == "1t.png" and got[0].mask.name == "1forged.png"
