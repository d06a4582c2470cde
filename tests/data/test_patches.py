import logging

import numpy as np
import pytest
from PIL import Image

from mantra_jax.data.patches import PatchBank, cut_patches, grid_origins, is_homogeneous, patch_deviation
from mantra_jax.data.photos import PhotoRef, find_photos, select_split


def _textured(h, w, std, seed=0):
    """Gray-ish image whose luma std is ~std (uniform noise around 128)."""
    half = std * np.sqrt(3.0)
    noise = np.random.default_rng(seed).uniform(-half, half, (h, w, 1))
    return np.clip(np.rint(128 + noise), 0, 255).astype(np.uint8).repeat(3, axis=2)


def test_grid_is_centred_and_non_overlapping():
    assert grid_origins(600, 530, 256) == [(44, 9), (44, 265), (300, 9), (300, 265)]
    assert grid_origins(255, 1000, 256) == []
    assert grid_origins(256, 256, 256) == [(0, 0)]


def test_patch_deviation_matches_float64_reference():
    patch = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    p = patch.astype(np.float64)
    gray = 0.299 * p[..., 0] + 0.587 * p[..., 1] + 0.114 * p[..., 2]
    ref = np.sqrt(np.mean((gray - gray.mean()) ** 2))
    assert abs(patch_deviation(patch) - ref) < 1e-9


def test_homogeneous_patches_are_rejected_at_deviation_32():
    assert is_homogeneous(np.full((8, 8, 3), 200, np.uint8))
    assert is_homogeneous(_textured(64, 64, 25))
    assert not is_homogeneous(_textured(64, 64, 40))
    flat, busy = _textured(64, 64, 10, seed=1), _textured(64, 64, 50, seed=2)
    image = np.concatenate([flat, busy], axis=1)
    patches, origins = cut_patches(image, size=64)
    assert origins.tolist() == [[0, 64]]
    np.testing.assert_array_equal(patches[0], busy)


def test_range_measure_is_max_minus_min_of_gray():
    patch = np.full((16, 16, 3), 100, np.uint8)
    patch[3, 4] = (200, 200, 200)
    assert abs(patch_deviation(patch, "range") - 100.0) < 1e-9
    assert patch_deviation(patch, "std") < 32
    assert is_homogeneous(patch) and not is_homogeneous(patch, measure="range")
    with pytest.raises(ValueError, match="deviation measure"):
        patch_deviation(patch, "mad")


def test_bank_build_skips_bad_files_and_keeps_splits(tmp_path, caplog):
    for i in range(3):
        Image.fromarray(_textured(130, 200, 60, seed=i)).save(tmp_path / f"p{i}.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    refs = [PhotoRef(f"p{i}.png", str(tmp_path / f"p{i}.png"), split="train") for i in range(2)]
    refs += [PhotoRef("bad.png", str(tmp_path / "bad.png"), split="train"),
             PhotoRef("p2.png", str(tmp_path / "p2.png"), split="test")]
    with caplog.at_level(logging.WARNING):
        bank = PatchBank.build(refs, "train", size=64)
    assert "bad.png" in caplog.text
    assert bank.keys == ("p0.png", "p1.png") and len(bank) == 2 * 2 * 3
    assert bank.patches.shape == (12, 64, 64, 3) and bank.patches.dtype == np.uint8
    np.testing.assert_array_equal(bank.photo_ids, [0] * 6 + [1] * 6)
    assert len(PatchBank.build(refs, "test", size=64)) == 6


def test_bank_without_any_patch_raises(tmp_path):
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(tmp_path / "flat.png")
    with pytest.raises(ValueError, match="no 64x64 patch"):
        PatchBank.build([PhotoRef("flat.png", str(tmp_path / "flat.png"), split="train")], "train", size=64)


def test_skimage_default_banks(skimage_train_bank):
    assert len(skimage_train_bank) == 17 and skimage_train_bank.size == 256
    assert all(not is_homogeneous(p) for p in skimage_train_bank.patches)
    assert len(PatchBank.build(None, "validation")) == 2


def test_bank_from_real_photo_folder(shared_data):
    folder = shared_data("pristine/kodak24")
    bank = PatchBank.build(folder, "train")
    assert len(bank) >= 10 and all(k.startswith("kodim") for k in bank.keys)
    held_out = {r.key for s in ("validation", "test") for r in select_split(find_photos(folder), s)}
    assert held_out and not set(bank.keys) & held_out
