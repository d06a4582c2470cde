"""Detection on user files: input collection, region of interest, scores, heat maps and per-image outputs.

What ``mantra detect`` writes for an image ``<stem>`` (all atomically):

* ``<stem>.npy``: the raw probability map, float32 (H, W) (of the region of interest when one is given);
* ``<stem>_heatmap.png``: the map through OpenCV's JET colour map (blue 0 -> red 1), RGB;
* ``<stem>_overlay.png``: the photo blended with the heat map, per-pixel weight ``0.25 + 0.6 p``, so
  authentic areas stay readable and suspicious ones turn red.

Image-level scores: ``score_mean`` (the mean probability, the paper's image score), ``score_max`` and
``score_p99`` (99th percentile, a max that ignores a few outlier pixels).
Output stems are the input file stems, made unique with ``_1``, ``_2``... in input order.
A map with a non-finite value (broken weights) is an error for that image (``check_map``): nothing is
written for it.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pathlib
import time
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from mantra_jax.io.atomic import save_npy_atomic
from mantra_jax.io.images import DEFAULT_MIN_SIZE, scan_images, write_png_atomic

_GLOB_CHARS = frozenset("*?[")


@dataclasses.dataclass(frozen=True)
class Roi:
    """A region of interest: x, y (top-left column and row), w, h, in pixels."""

    x: int
    y: int
    w: int
    h: int

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"

    def crop(self, image: np.ndarray) -> np.ndarray:
        """Crops (H, W, ...) ``image``; raises ValueError when the region leaves the image."""
        height, width = image.shape[:2]
        if self.x + self.w > width or self.y + self.h > height:
            raise ValueError(f"ROI {self} (x,y,w,h) reaches outside the {width}x{height} image")
        return image[self.y:self.y + self.h, self.x:self.x + self.w]


def parse_roi(text: str, min_size: int = DEFAULT_MIN_SIZE) -> Roi:
    """``"x,y,w,h"`` (integers, x, y >= 0, w, h >= ``min_size``, the smallest image side read) -> Roi;
    ValueError otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"ROI must be four integers x,y,w,h, got {text!r}") from None
    if x < 0 or y < 0 or w < min_size or h < min_size:
        raise ValueError(f"ROI needs x, y >= 0 and w, h >= {min_size} (the smallest image side analysed), "
                         f"got {text!r}")
    return Roi(x, y, w, h)


def _images_in(folder: pathlib.Path, recursive: bool, problems: list[str]) -> list[pathlib.Path]:
    found, skipped = scan_images(folder, recursive=recursive)
    problems.extend(skipped)
    return found


def collect_inputs(specs: Sequence[str], *, recursive: bool = False,
                   exclude: Callable[[pathlib.Path], bool] | None = None
                   ) -> tuple[list[pathlib.Path], list[str]]:
    """Expands files, folders (image files by extension) and glob patterns, in order, without duplicates.

    Returns ``(paths, problems)``: a spec that names nothing gives a one-line problem instead of a path
    (a named file is always kept, whatever its extension: reading it will say what is wrong with it).
    Files for which ``exclude(path)`` is true (a run's own outputs) are left out silently: the callback
    can count them.
    """
    paths: list[pathlib.Path] = []
    problems: list[str] = []
    seen: set[str] = set()

    def add(p: pathlib.Path) -> None:
        key = os.path.realpath(p)
        if key in seen:
            return
        seen.add(key)
        if exclude is None or not exclude(p):
            paths.append(p)

    for spec in specs:
        p = pathlib.Path(os.path.expanduser(spec))
        if p.is_dir():
            found = _images_in(p, recursive, problems)
            if not found or (exclude is not None and all(exclude(f) for f in found)):
                problems.append(f"{spec}: folder holds no image files" + (" besides mantra's outputs" if found else ""))
            for f in found:
                add(f)
        elif p.exists():
            add(p)
        elif _GLOB_CHARS & set(spec):
            matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
            files = []
            for m in map(pathlib.Path, matches):
                files.extend(_images_in(m, recursive, problems) if m.is_dir() else [m])
            if not files:
                problems.append(f"{spec}: pattern matches no file")
            for f in files:
                add(f)
        else:
            problems.append(f"{spec}: no such file or folder")
    return paths, problems


def unique_stems(paths: Sequence[pathlib.Path]) -> list[str]:
    """Output stems: each path's stem, with ``_1``, ``_2``... appended to repeats (case-insensitive)."""
    used: set[str] = set()
    out = []
    for p in paths:
        stem, k = p.stem, 0
        while stem.lower() in used:
            k += 1
            stem = f"{p.stem}_{k}"
        used.add(stem.lower())
        out.append(stem)
    return out


def image_scores(prob: np.ndarray) -> dict[str, float]:
    """``score_mean`` (paper), ``score_max`` and ``score_p99`` of an (H, W) map, computed in float64."""
    p = np.asarray(prob, np.float64)
    return {"score_mean": float(p.mean()), "score_max": float(p.max()), "score_p99": float(np.percentile(p, 99))}


def heatmap(prob: np.ndarray) -> np.ndarray:
    """(H, W) probabilities in [0, 1] -> (H, W, 3) uint8 RGB through the JET colour map."""
    u8 = np.rint(np.clip(np.asarray(prob, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    return cv2.applyColorMap(u8, cv2.COLORMAP_JET)[:, :, ::-1].copy()


def overlay(image: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Blends (H, W, 3) uint8 ``image`` with the heat map of ``prob`` (H, W), weight 0.25 + 0.6 p per pixel."""
    if image.shape[:2] != prob.shape:
        raise ValueError(f"overlay: image {image.shape[:2]} and map {prob.shape} differ in size")
    out = np.empty(image.shape, np.uint8)
    for r0 in range(0, image.shape[0], OVERLAY_BAND_ROWS):  # by bands: float32 temporaries of a band only
        rows = slice(r0, r0 + OVERLAY_BAND_ROWS)
        p = prob[rows]
        alpha = (0.25 + 0.6 * np.clip(np.asarray(p, np.float32), 0.0, 1.0))[..., None]
        blend = (1.0 - alpha) * image[rows].astype(np.float32) + alpha * heatmap(p).astype(np.float32)
        out[rows] = np.rint(blend)
    return out


OVERLAY_BAND_ROWS = 256


def output_names(stem: str) -> dict[str, str]:
    """The files ``write_outputs`` writes for ``stem``: ``{"npy", "heatmap", "overlay"}`` -> name."""
    return {"npy": f"{stem}.npy", "heatmap": f"{stem}_heatmap.png", "overlay": f"{stem}_overlay.png"}


def check_map(prob: Any, shape: tuple[int, int], name: str = "") -> np.ndarray:
    """``prob`` as a float32 (H, W) map of ``shape`` with only finite values; ValueError otherwise.

    Finite but wrong weights (a negative moving variance, flipped bits) give NaN maps: they are an error
    for the image in every command, never a heat map or a score.
    """
    p = np.asarray(prob)
    where = f"{name}: " if name else ""
    if p.shape != tuple(shape):
        raise ValueError(f"{where}the model returned a {p.shape} map for a {tuple(shape)} image")
    bad = int(p.size - np.count_nonzero(np.isfinite(p)))
    if bad:
        raise ValueError(f"{where}the forgery map has {bad} non-finite value(s) (NaN/inf) of {p.size}: the "
                         "checkpoint's weights are probably broken")
    return p.astype(np.float32, copy=False)


def write_outputs(out_dir: pathlib.Path, stem: str, image: np.ndarray, prob: np.ndarray,
                  claim: Callable[..., Any] | None = None) -> dict[str, str]:
    """Writes ``<stem>.npy``, ``<stem>_heatmap.png`` and ``<stem>_overlay.png``; returns their names.

    ``claim(*names)`` is called first (``OutputDir.claim`` lists them in the folder's manifest).
    """
    names = output_names(stem)
    if claim is not None:
        claim(*names.values())
    save_npy_atomic(out_dir / names["npy"], np.asarray(prob, np.float32))
    write_png_atomic(out_dir / names["heatmap"], heatmap(prob))
    write_png_atomic(out_dir / names["overlay"], overlay(image, prob))
    return names


def detect_file(path: pathlib.Path, stem: str, out_dir: pathlib.Path,
                predict: Callable[[np.ndarray], tuple[np.ndarray, bool]], *, roi: Roi | None = None,
                max_pixels: int | None = None, max_bytes: int | None = None,
                claim: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Reads one image, predicts (on the ROI when given), writes the outputs; returns the summary record.

    ``predict(image) -> (map, tiled)``. Raises ImageReadError / ValueError for a bad file or ROI, or a map
    with non-finite values (then nothing is written).
    """
    from mantra_jax.io.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, read_image

    t0 = time.perf_counter()
    image = read_image(path, max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels,
                       max_bytes=DEFAULT_MAX_BYTES if max_bytes is None else max_bytes)
    height, width = image.shape[:2]
    region = image if roi is None else roi.crop(image)
    prob, tiled = predict(region)
    prob = check_map(prob, region.shape[:2])
    names = write_outputs(out_dir, stem, region, prob, claim=claim)
    return {"image": str(path), "stem": stem, "status": "ok", "error": "", "height": height, "width": width,
            "roi": "" if roi is None else str(roi), **image_scores(prob), "tiled": tiled,
            "seconds": round(time.perf_counter() - t0, 3), **{f"{k}_file": v for k, v in names.items()}}
