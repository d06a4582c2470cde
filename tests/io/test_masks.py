"""Mask binarisation, resizing and limits (mantra_jax.io.masks, the one mask reader)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mantra_jax.io import masks as M


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def test_read_mask_binarises_gray_rgb_16bit_and_label_maps(tmp_path):
    gray = np.array([[0, 127, 128, 255]], np.uint8)
    expected = np.array([[False, False, True, True]])
    np.testing.assert_array_equal(M.read_mask(_png(tmp_path / "g.png", gray)), expected)
    np.testing.assert_array_equal(M.read_mask(tmp_path / "g.png", "dark"), ~expected)
    rgb = np.stack([gray] * 3, axis=-1)
    np.testing.assert_array_equal(M.read_mask(_png(tmp_path / "rgb.png", rgb)), expected)
    rgba = np.concatenate([rgb, np.zeros_like(rgb[..., :1])], axis=-1)  # alpha is ignored
    np.testing.assert_array_equal(M.read_mask(_png(tmp_path / "rgba.png", rgba)), expected)
    deep = (gray.astype(np.uint16) * 257)
    np.testing.assert_array_equal(M.read_mask(_png(tmp_path / "d.png", deep)), expected)
    labels = np.array([[0, 1, 1, 0]], np.uint8)
    np.testing.assert_array_equal(M.read_mask(_png(tmp_path / "l.png", labels)), labels.astype(bool))
    one_bit = np.array([[False, True, True, False]])
    np.testing.assert_array_equal(M.read_mask(_png(tmp_path / "b.png", one_bit)), one_bit)


def test_read_mask_green_rule_for_colour_coded_masks(tmp_path):
    colours = np.array([[[255, 0, 0], [0, 255, 0], [120, 40, 30], [40, 200, 60]]], np.uint8)
    np.testing.assert_array_equal(M.read_mask(_png(tmp_path / "c.png", colours), "green"),
                                  [[False, True, False, True]])


def test_read_mask_errors(tmp_path):
    with pytest.raises(M.MaskError, match="does not exist"):
        M.read_mask(tmp_path / "none.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(M.MaskError, match="cannot be read"):
        M.read_mask(tmp_path / "junk.png")
    _png(tmp_path / "m.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(M.MaskError, match="rule"):
        M.read_mask(tmp_path / "m.png", "red")  # type: ignore[arg-type]


def test_load_mask_resizes_with_nearest_and_flags_mismatch(tmp_path):
    small = np.zeros((2, 3), np.uint8)
    small[0, 1] = 255
    path = _png(tmp_path / "m.png", small)
    same = M.load_mask(path, (2, 3))
    assert same.size_matches and same.source_shape == (2, 3)
    resized = M.load_mask(path, (4, 6))
    assert not resized.size_matches and resized.source_shape == (2, 3)
    np.testing.assert_array_equal(resized.mask, np.repeat(np.repeat(small > 127, 2, 0), 2, 1))
    skipped = M.load_mask(path, (4, 6), on_mismatch="skip")
    assert skipped.mask is None and not skipped.size_matches
    with pytest.raises(M.MaskError, match="2x3 but its image is 4x6"):
        M.load_mask(path, (4, 6), on_mismatch="error")


def test_resize_nearest_matches_pillow_nearest():
    rng = np.random.default_rng(0)
    mask = (rng.random((7, 9)) < 0.5).astype(np.uint8) * 255
    for shape in ((13, 5), (3, 17), (7, 9)):
        ref = np.asarray(Image.fromarray(mask).resize((shape[1], shape[0]), Image.Resampling.NEAREST))
        np.testing.assert_array_equal(M.resize_nearest(mask, shape), ref)


def test_pairs_reads_masks_with_the_one_mask_reader():
    from mantra_jax.eval import pairs

    assert pairs.load_mask is M.load_mask


def test_mask_over_the_pixel_limit_is_refused_from_its_header(tmp_path):
    path = _png(tmp_path / "m.png", np.zeros((30, 40), np.uint8))
    with pytest.raises(M.MaskError, match="over the limit of 1000"):
        M.read_mask(path, max_pixels=1000)


def test_device_is_refused_as_a_mask():
    with pytest.raises(M.MaskError, match="not a regular file"):
        M.read_mask("/dev/zero")
