import logging

import numpy as np
import pytest
from PIL import Image

from mantra_jax.data.photos import (SKIMAGE_PHOTOS, PhotoRef, find_photos, load_photo_or_none, resolve_photos,
                                    select_split, skimage_photos)


def _write(path, h=20, w=30, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def test_find_photos_is_recursive_sorted_and_skips_non_images_and_hidden(tmp_path):
    _write(tmp_path / "b.png")
    _write(tmp_path / "sub" / "deeper" / "a.JPG")
    _write(tmp_path / ".hidden" / "c.png")
    _write(tmp_path / ".d.png")
    (tmp_path / "notes.txt").write_text("hello")
    refs = find_photos(tmp_path)
    assert [r.key for r in refs] == ["b.png", "sub/deeper/a.JPG"]
    assert refs[1].path == str(tmp_path / "sub" / "deeper" / "a.JPG")


def test_find_photos_rejects_a_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        find_photos(tmp_path / "nope")


def test_bad_file_is_logged_and_skipped(tmp_path, caplog):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with caplog.at_level(logging.WARNING, logger="mantra_jax.data.photos"):
        assert load_photo_or_none(PhotoRef("broken.jpg", str(tmp_path / "broken.jpg"))) is None
    assert "broken.jpg" in caplog.text and "skipping" in caplog.text


def test_skimage_photos_load_offline_as_rgb_and_fill_all_splits():
    refs = skimage_photos()
    assert len(refs) == len(SKIMAGE_PHOTOS) == 9
    for ref in refs:
        image = ref.load()
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 256
    assert [len(select_split(refs, s)) for s in ("train", "validation", "test")] == [7, 1, 1]


def test_resolve_photos_defaults_to_skimage(tmp_path):
    assert resolve_photos(None) == skimage_photos()
    _write(tmp_path / "x.png")
    assert [r.key for r in resolve_photos(tmp_path)] == ["x.png"]
    with pytest.raises(ValueError, match="sequence of PhotoRef"):
        resolve_photos(["x.png"])


def test_fixed_split_overrides_the_hash():
    ref = PhotoRef("a.jpg")
    fixed = PhotoRef("a.jpg", split="test" if ref.split_of() != "test" else "train")
    assert fixed.split_of() == fixed.split != ref.split_of()
