"""Limits of the one image reader: every format's size is checked from its header, before any decoding."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from mantra_jax.io import images as I


def _encoded(fmt: str, h: int = 12, w: int = 20) -> bytes:
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    if fmt in ("pfm", "hdr", "pam"):
        data = rgb.astype(np.float32) / 255 if fmt != "pam" else rgb
        ok, enc = cv2.imencode(f".{fmt}", data)
        assert ok
        return enc.tobytes()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return buf.getvalue()


FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF", "PPM", "JPEG2000", "pfm", "hdr", "pam")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_sized_from_its_header_and_refused_undecoded(fmt, monkeypatch):
    data = _encoded(fmt)
    assert I.decode_image(data, name="x").shape == (12, 20, 3)  # readable within the limit
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append("cv2"))
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append("pil") or real_load(self))
    with pytest.raises(I.ImageReadError, match="20x12 image has 240 pixels, over the limit of 239"):
        I.decode_image(data, name="x", max_pixels=239)
    assert decoded == []
    assert I.image_header_size(data) == (12, 20)


def test_pillows_own_bomb_limit_does_not_apply_and_is_left_as_it_was(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 240 pixels > 2 x 10: Pillow alone would refuse
    assert I.decode_image(_encoded("PNG"), name="x").shape == (12, 20, 3)
    assert Image.MAX_IMAGE_PIXELS == 10


def test_unknown_format_is_refused_without_opencv(monkeypatch):
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded an unknown format"))
    with pytest.raises(I.ImageReadError, match="not a readable image"):
        I.decode_image(b"\x00\x01garbage" * 10, name="x")


def test_fifo_is_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(I.ImageReadError, match="not a regular file"):
        I.read_image(tmp_path / "pipe.png")


def test_output_mode_follows_the_umask(tmp_path):
    import os

    from mantra_jax.io.atomic import output_mode, write_text_atomic

    old = os.umask(0o002)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        assert output_mode() == 0o664 and (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(old)


def _png_declaring(width, height, rows_of_data):
    """A valid-looking RGB PNG whose IHDR declares width x height but whose IDAT holds only a few rows."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + bytes(3 * width) for _ in range(rows_of_data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def test_a_png_far_too_small_for_its_declared_size_is_refused_before_decoding(monkeypatch):
    from PIL import Image

    from mantra_jax.io.images import ImageReadError, decode_image

    data = _png_declaring(16384, 8192, 4)  # exactly the default pixel limit, 4 rows of data
    assert len(data) < 1000
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded"))
    with pytest.raises(ImageReadError, match=r"bytes cannot hold the 16384x8192 PNG image its header declares"):
        decode_image(data, name="liar.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_the_most_compressible_real_image_is_above_the_minimum(fmt):
    import io

    from PIL import Image

    from mantra_jax.io.images import minimum_encoded_bytes

    h, w = 2048, 3072
    for mode in ("1", "L", "RGB"):
        buf = io.BytesIO()
        Image.new(mode if fmt == "PNG" or mode != "1" else "L", (w, h), 0).save(
            buf, fmt, **({"optimize": True, "compress_level": 9} if fmt == "PNG" else {"quality": 1}))
        assert len(buf.getvalue()) >= minimum_encoded_bytes(fmt, h, w), (mode, len(buf.getvalue()))
