"""Contact sheet tiling, and the gallery script end to end on a tiny patch."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mantra_jax.manipulations import CATALOGUE, amplified_difference, by_name, contact_sheet

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_amplified_difference_is_scaled_absolute_difference():
    a = np.array([[[10, 200, 0]]], np.uint8)
    b = np.array([[[13, 190, 100]]], np.uint8)
    np.testing.assert_array_equal(amplified_difference(a, b, 8.0), [[[24, 80, 255]]])


def test_amplified_difference_rejects_bad_input():
    a = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="shapes differ"):
        amplified_difference(a, np.zeros((4, 5, 3), np.uint8), 2.0)
    with pytest.raises(ValueError, match="gain"):
        amplified_difference(a, a, 0.0)


def test_sheet_layout_and_tiles(photo):
    entries = [by_name("BoxBlur-K3"), by_name("GaussianNoise-S9"), by_name("Dithering")]
    sheet = contact_sheet(photo, entries, seed=5, columns=2, gain=4.0, gap=3)
    label = max(12, 64 // 8)
    tile_h, tile_w = label + 64, 2 * 64
    assert sheet.shape == (2 * (tile_h + 3) + 3, 2 * (tile_w + 3) + 3, 3) and sheet.dtype == np.uint8
    # second tile (row 0, column 1): the box blur beside its amplified difference, under a drawn label
    y, x = 3, 3 + tile_w + 3
    blurred = entries[0].apply(photo)
    np.testing.assert_array_equal(sheet[y + label:y + tile_h, x:x + 64], blurred)
    np.testing.assert_array_equal(sheet[y + label:y + tile_h, x + 64:x + 128],
                                  amplified_difference(photo, blurred, 4.0))
    assert sheet[y:y + label, x:x + tile_w].max() > 0
    # noise tile uses default_rng([seed, index])
    noisy = entries[1].apply(photo, np.random.default_rng([5, entries[1].index]))
    np.testing.assert_array_equal(sheet[y + tile_h + 3 + label:y + 2 * tile_h + 3, 3:3 + 64], noisy)


def test_gallery_script_writes_a_png(tmp_path):
    out = tmp_path / "sheet" / "gallery.png"
    result = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "gallery.py"), f"--out={out}", "--patch=16",
         "--columns=20"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    sheet = cv2.imread(str(out), cv2.IMREAD_COLOR)
    tiles = len(CATALOGUE) + 1
    rows = -(-tiles // 20)
    assert sheet.shape == (rows * (12 + 16 + 4) + 4, 20 * (32 + 4) + 4, 3)
    assert [p.name for p in out.parent.iterdir()] == ["gallery.png"]  # no temporary left behind
