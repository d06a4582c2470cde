"""Compression family (hierarchy L1 node 3): JPEG, double JPEG and WEBP.

Parameter meanings:
- JPEGCompress-Q: one JPEG round trip at quality Q (cv2.imencode with IMWRITE_JPEG_QUALITY = Q, OpenCV's
  libjpeg-turbo defaults: baseline, 4:2:0 chroma subsampling, standard tables scaled by Q), decoded with
  cv2.imdecode. Q100 still changes the image (colour conversion, chroma subsampling, rounding).
- JPEGDoubleCompress-Q1/Q2: JPEG at Q1, decode, JPEG again at Q2 on the same 8x8 grid (aligned double
  compression), decode.
- WEBPCompress-Q: one lossy WebP round trip at quality Q (cv2 IMWRITE_WEBP_QUALITY = Q; Q <= 100 is lossy).

Images are handed to OpenCV as BGR so that its RGB -> YCbCr conversion weights the right channels.
Deterministic; the rng is ignored.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from mantra_jax.manipulations._common import Builder, check_image, from_bgr, ignore_rng, parse_number, to_bgr


def _check_quality(q: int, name: str) -> None:
    if not isinstance(q, (int, np.integer)) or not 1 <= q <= 100:
        raise ValueError(f"{name}: quality must be an integer in [1, 100], got {q!r}")


def _roundtrip(image: np.ndarray, ext: str, params: list[int]) -> np.ndarray:
    ok, buf = cv2.imencode(ext, to_bgr(image), params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {ext} with {params}")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if decoded is None or decoded.shape != image.shape:
        raise RuntimeError(f"OpenCV could not decode its own {ext} stream")
    return from_bgr(decoded)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip at `quality`. image (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    _check_quality(quality, "jpeg")
    return _roundtrip(image, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)])


def double_jpeg(image: np.ndarray, q1: int, q2: int) -> np.ndarray:
    """JPEG at q1 then JPEG at q2 (aligned grids). image (H, W, 3) uint8 -> (H, W, 3) uint8."""
    return jpeg(jpeg(image, q1), q2)


def webp(image: np.ndarray, quality: int) -> np.ndarray:
    """Lossy WebP round trip at `quality`. image (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    _check_quality(quality, "webp")
    return _roundtrip(image, ".webp", [cv2.IMWRITE_WEBP_QUALITY, int(quality)])


def _build_jpeg(token: str):
    return ignore_rng(functools.partial(jpeg, quality=int(parse_number(token, "Q"))))


def _build_double(token: str):
    first, sep, second = token.partition("/")
    if not sep:
        raise ValueError(f"double JPEG parameter must look like 'Q70/91', got {token!r}")
    q1 = int(parse_number(first, "Q"))
    q2 = int(parse_number(second, ""))
    return ignore_rng(functools.partial(double_jpeg, q1=q1, q2=q2))


def _build_webp(token: str):
    return ignore_rng(functools.partial(webp, quality=int(parse_number(token, "Q"))))


BUILDERS: dict[str, Builder] = {
    "JPEGCompress": _build_jpeg,
    "JPEGDoubleCompress": _build_double,
    "WEBPCompress": _build_webp,
}
