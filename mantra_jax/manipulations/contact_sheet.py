"""A contact sheet of manipulation types: each tile shows the manipulated patch beside its amplified absolute
difference to the original, under a label with the type's name. Used by experiments/gallery.py."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from mantra_jax.manipulations._common import check_image
from mantra_jax.manipulations.catalogue import CATALOGUE, Manipulation

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def amplified_difference(original: np.ndarray, manipulated: np.ndarray, gain: float) -> np.ndarray:
    """clip(|manipulated - original| * gain, 0, 255): both (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(original, "original")
    check_image(manipulated, "manipulated")
    if original.shape != manipulated.shape:
        raise ValueError(f"shapes differ: {original.shape} vs {manipulated.shape}")
    if not gain > 0:
        raise ValueError(f"gain must be > 0, got {gain!r}")
    diff = np.abs(manipulated.astype(np.float32) - original.astype(np.float32))
    return np.clip(np.rint(diff * np.float32(gain)), 0, 255).astype(np.uint8)


def labelled(tile: np.ndarray, text: str, label_height: int) -> np.ndarray:
    """Puts a black strip of `label_height` rows with `text` in white above `tile` (H, W, 3) uint8.
    The font shrinks until the text fits the width. Returns (label_height + H, W, 3) uint8."""
    check_image(tile, "tile")
    width = tile.shape[1]
    strip = np.zeros((label_height, width, 3), dtype=np.uint8)
    scale = label_height / 30.0
    while scale > 0.2:
        (text_w, text_h), _ = cv2.getTextSize(text, _FONT, scale, 1)
        if text_w <= width - 4:
            break
        scale *= 0.9
    (_, text_h), baseline = cv2.getTextSize(text, _FONT, scale, 1)
    origin = (2, min(label_height - 1, (label_height + text_h) // 2))
    cv2.putText(strip, text, origin, _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def contact_sheet(image: np.ndarray, manipulations: Sequence[Manipulation] | None = None, seed: int = 0,
                  columns: int = 16, gain: float = 8.0, gap: int = 4) -> np.ndarray:
    """One RGB sheet: the original first, then every manipulation of `image` (H, W, 3) uint8.

    Tile = [manipulated | amplified difference x gain] under its name; tiles are laid out row-major in
    `columns` columns separated by `gap` grey pixels. Type i draws from np.random.default_rng([seed, i]), so
    each tile is reproducible on its own. label = max(12, H // 8) rows. Returns uint8 of shape
    (rows * (label + H + gap) + gap, columns * (2W + gap) + gap, 3).
    """
    check_image(image)
    if columns < 1 or gap < 0:
        raise ValueError(f"need columns >= 1 and gap >= 0, got {columns}, {gap}")
    entries = CATALOGUE if manipulations is None else tuple(manipulations)
    label_height = max(12, image.shape[0] // 8)
    tiles = [labelled(np.concatenate([image, np.zeros_like(image)], axis=1), "original", label_height)]
    for m in entries:
        out = m.apply(image, np.random.default_rng([seed, m.index]))
        pair = np.concatenate([out, amplified_difference(image, out, gain)], axis=1)
        tiles.append(labelled(pair, m.name, label_height))
    tile_h, tile_w = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / columns)
    sheet = np.full((rows * (tile_h + gap) + gap, columns * (tile_w + gap) + gap, 3), 96, dtype=np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = gap + r * (tile_h + gap), gap + c * (tile_w + gap)
        sheet[y:y + tile_h, x:x + tile_w] = tile
    return sheet
