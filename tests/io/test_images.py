"""Tests for mantra_jax.io.images on small synthetic files written into tmp_path."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

import mantra_jax
from mantra_jax.io.images import (ImageReadError, apply_exif_orientation, decode_image, preprocess, read_image,
                                  write_png_atomic)


def _photo(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """A smooth, JPEG-friendly colour image (H, W, 3) uint8."""
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], axis=-1)
    return np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)


def _jpeg_bytes(rgb: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95, **kwargs)
    return buf.getvalue()


def test_reads_rgb_png_exactly(tmp_path):
    rgb = _photo()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out, rgb)


def test_truncated_jpeg_raises_naming_the_file(tmp_path):
    data = _jpeg_bytes(_photo(64, 64))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg") as info:
        read_image(path)
    assert "\n" not in str(info.value)


def test_text_file_raises(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageReadError, match="notes.png: not a readable image"):
        read_image(path)


def test_missing_and_empty_files_raise(tmp_path):
    with pytest.raises(ImageReadError, match="cannot read file"):
        read_image(tmp_path / "absent.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        read_image(tmp_path / "empty.png")


def test_image_error_is_a_value_error():
    assert issubclass(ImageReadError, ValueError)


def test_one_pixel_image_is_rejected_as_too_small(tmp_path):
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    with pytest.raises(ImageReadError, match="smaller than the minimum side"):
        read_image(tmp_path / "dot.png")
    assert read_image(tmp_path / "dot.png", min_size=1).shape == (1, 1, 3)


def test_image_over_pixel_limit_is_rejected(tmp_path):
    Image.fromarray(_photo()).save(tmp_path / "big.png")
    with pytest.raises(ImageReadError, match="over the limit of 700"):
        read_image(tmp_path / "big.png", max_pixels=700)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_rgb_is_scaled_by_257(tmp_path, suffix):
    rng = np.random.default_rng(1)
    rgb16 = rng.integers(0, 65536, (16, 20, 3), dtype=np.uint16)
    rgb16[0, 0] = (0, 257 * 7, 65535)
    assert cv2.imwrite(str(tmp_path / f"deep{suffix}"), rgb16[:, :, ::-1])
    out = read_image(tmp_path / f"deep{suffix}")
    expected = np.rint(rgb16.astype(np.float64) / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out[0, 0], (0, 7, 255))


def test_16_bit_grayscale_png_becomes_three_equal_channels(tmp_path):
    gray16 = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 257)
    assert cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    out = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(out, np.repeat((gray16 // 257).astype(np.uint8)[:, :, None], 3, axis=2))


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    rgb = _photo(32, 32)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=98)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    out = read_image(tmp_path / "cmyk.jpg")
    assert out.shape == (32, 32, 3)
    assert np.abs(out.astype(np.float64) - rgb).mean() < 4.0


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = _photo()[:, :, 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    np.testing.assert_array_equal(out, np.repeat(gray[:, :, None], 3, axis=2))


def test_alpha_is_dropped_keeping_stored_colours(tmp_path):
    rgba = np.dstack([_photo(), np.full((24, 32), 0, np.uint8)])
    rgba[:, :16, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    np.testing.assert_array_equal(read_image(tmp_path / "alpha.png"), rgba[:, :, :3])


def test_exif_rotated_jpeg_is_displayed_upright(tmp_path):
    rgb = _photo(24, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored pixels must be rotated 90 degrees clockwise for display
    (tmp_path / "rot.jpg").write_bytes(_jpeg_bytes(rgb, exif=exif.tobytes()))
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (40, 24, 3)
    expected = np.rot90(rgb, k=-1)
    assert np.abs(out.astype(np.float64) - expected).mean() < 3.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation):
    rgb = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(apply_exif_orientation(rgb, orientation), expected)


def test_palette_image_is_converted(tmp_path):
    rgb = _photo()
    Image.fromarray(rgb).quantize(16).save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    np.testing.assert_array_equal(out, expected)


def test_opencv_fallback_reads_pfm(tmp_path):
    # PFM is unknown to Pillow; OpenCV reads it as float32, taken as [0, 1].
    img = np.random.default_rng(2).random((10, 12, 3)).astype(np.float32)
    assert cv2.imwrite(str(tmp_path / "f.pfm"), img[:, :, ::-1])
    out = read_image(tmp_path / "f.pfm")
    np.testing.assert_array_equal(out, np.rint(img.astype(np.float64) * 255).astype(np.uint8))


def test_decode_image_reads_bytes():
    rgb = _photo()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    np.testing.assert_array_equal(decode_image(buf.getvalue()), rgb)


def test_preprocess_matches_float64_reference():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    y = preprocess(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, x.astype(np.float64) / 255 * 2 - 1, rtol=0, atol=1e-7)
    assert y.min() == -1.0 and y.max() == 1.0
    np.testing.assert_array_equal(preprocess(x[0]), y[0])


def test_preprocess_is_the_public_one():
    assert mantra_jax.preprocess is preprocess


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8),
                                 np.zeros((4, 4, 4), np.uint8), np.zeros((1, 1, 4, 4, 3), np.uint8)])
def test_preprocess_rejects_other_dtypes_and_shapes(bad):
    with pytest.raises(ValueError, match="preprocess expects"):
        preprocess(bad)


@pytest.mark.parametrize("shape,dtype", [((6, 7, 3), np.uint8), ((6, 7), np.uint8), ((6, 7, 4), np.uint8),
                                         ((6, 7, 3), np.uint16)])
def test_write_png_atomic_round_trips(tmp_path, shape, dtype):
    a = np.random.default_rng(3).integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    path = tmp_path / "sub" / "x.png"
    write_png_atomic(path, a)
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a.ndim == 3:
        back = back[:, :, [2, 1, 0, 3][: a.shape[2]]]
    np.testing.assert_array_equal(back, a)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]
    from mantra_jax.io.atomic import output_mode

    assert path.stat().st_mode & 0o777 == output_mode()  # 0666 less the umask, like every other output


def test_write_png_atomic_writes_bool_as_0_255(tmp_path):
    m = np.zeros((4, 5), bool)
    m[1, 2] = True
    write_png_atomic(tmp_path / "m.png", m)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED), m * 255)


def test_write_png_atomic_rejects_float(tmp_path):
    with pytest.raises(ValueError, match="expects uint8, uint16 or bool"):
        write_png_atomic(tmp_path / "f.png", np.zeros((4, 4), np.float32))
    assert not list(tmp_path.iterdir())
