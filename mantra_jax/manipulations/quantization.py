"""Quantization / dithering family (hierarchy L1 node 6): Quantization with C in {50, 75, ..., 225}; Dithering.

Parameter meanings:
- Quantization-C: colour quantization to an adaptive palette of at most C colours (Pillow's fast octree
  quantizer, Image.quantize(C, method=FASTOCTREE), no dithering): every pixel becomes the nearest palette
  colour, so flat colour regions and false contours appear; smaller C is coarser. (Median cut gives similar
  palettes but is far slower than the octree; measured: README, Benchmarks.)
- Dithering: Floyd-Steinberg error diffusion to the fixed 216-colour web-safe palette (levels 0, 51, ..., 255
  per channel; Pillow's Image.convert("P", palette=WEB, dither=FLOYDSTEINBERG)), which adds the
  characteristic high-frequency dither pattern.
Deterministic; the rng is ignored.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from mantra_jax.manipulations._common import Builder, check_image, ignore_rng, parse_number

COLOURS: tuple[int, ...] = (50, 75, 100, 125, 150, 175, 200, 225)
WEB_LEVELS: tuple[int, ...] = (0, 51, 102, 153, 204, 255)


def quantize_colours(image: np.ndarray, colours: int) -> np.ndarray:
    """Adaptive-palette colour quantization to at most `colours` colours in [2, 256].

    image (H, W, 3) uint8 -> (H, W, 3) uint8.
    """
    check_image(image)
    if not isinstance(colours, (int, np.integer)) or not 2 <= colours <= 256:
        raise ValueError(f"quantize_colours: colours must be an integer in [2, 256], got {colours!r}")
    pil = Image.fromarray(np.ascontiguousarray(image))
    quantized = pil.quantize(int(colours), method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    return np.asarray(quantized.convert("RGB")).copy()


def dither_web(image: np.ndarray) -> np.ndarray:
    """Floyd-Steinberg dithering to the 216-colour web palette. (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    pil = Image.fromarray(np.ascontiguousarray(image))
    paletted = pil.convert("P", palette=Image.Palette.WEB, dither=Image.Dither.FLOYDSTEINBERG)
    return np.asarray(paletted.convert("RGB")).copy()


def _build_quantization(token: str):
    return ignore_rng(functools.partial(quantize_colours, colours=int(parse_number(token, "C"))))


def _build_dithering(token: str):
    if token:
        raise ValueError(f"Dithering takes no parameter, got {token!r}")
    return ignore_rng(dither_web)


BUILDERS: dict[str, Builder] = {
    "Quantization": _build_quantization,
    "Dithering": _build_dithering,
}
