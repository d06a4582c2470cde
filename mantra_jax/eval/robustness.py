"""Robustness to post-processing (paper Fig. 4b; IMDL-BenCo's attack ladders): attacks and the study loop.

An attack is a pure function ``attack(image, mask, level, rng) -> (image', mask')`` on a uint8 RGB
(H, W, 3) image and its bool (H, W) mask (None for an authentic image); only ``resize`` changes the size
(the mask follows with nearest neighbour). Attacks (and their default ladders):

* ``resize`` (paper: "resizing X to a smaller size"): bilinear (OpenCV INTER_LINEAR) to
  ``round(level * H) x round(level * W)``; levels 0.9 ... 0.5.
* ``jpeg`` (paper: "compressing X with a lower quality factor"; IMDL-BenCo): OpenCV JPEG encode/decode
  at quality ``level`` (4:2:0 chroma subsampling, OpenCV's default); 100, 95, ..., 50.
* ``edge_blur`` (paper: "smoothing X around the edges of forged regions"): a ``level`` x ``level``
  Gaussian blur (sigma from OpenCV's rule for the size) applied only in the band of pixels within
  ``level // 2 + 1`` pixels of the mask boundary (both sides); authentic images are unchanged; 3 ... 15.
* ``gaussian_blur`` (IMDL-BenCo): whole-image Gaussian blur with kernel size ``level``; 3, 7, ..., 23.
* ``gaussian_noise`` (IMDL-BenCo): additive N(0, level^2) noise on the 0..255 scale, rounded and clipped;
  3, 7, ..., 23.

``run_robustness`` evaluates the clean benchmark once (``level`` None, attack ``none``) and then every
level of every attack, each as a full ``run_pairs`` pass; the random numbers of image k under attack
``name`` at ``level`` come from ``numpy.random.default_rng([seed, crc32(name), round(1000 level), k])``, so a
(attack, level) gives the same images whatever the rest of the ladder.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from mantra_jax.eval.pairs import Pair
from mantra_jax.io.masks import resize_nearest

Attack = Callable[[np.ndarray, "np.ndarray | None", float, np.random.Generator],
                  tuple[np.ndarray, "np.ndarray | None"]]
METRICS = ("pixel_auc", "pixel_auc_paper", "pixel_f1_fixed", "pixel_f1_best", "pixel_iou", "image_auc")


def _check(image: np.ndarray, mask: np.ndarray | None, what: str) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what}: image must be (H, W, 3) uint8, got {image.dtype} {image.shape}")
    if mask is not None and (mask.dtype != np.bool_ or mask.shape != image.shape[:2]):
        raise ValueError(f"{what}: mask must be bool {image.shape[:2]}, got {mask.dtype} {mask.shape}")


def _odd_kernel(level: float, what: str) -> int:
    k = int(level)
    if k != level or k < 1 or k % 2 == 0:
        raise ValueError(f"{what}: kernel size must be an odd positive integer, got {level}")
    return k


def resize(image: np.ndarray, mask: np.ndarray | None, level: float,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Bilinear down-scaling by ``level`` in (0, 1]; the mask by nearest neighbour."""
    _check(image, mask, "resize")
    if not 0.0 < level <= 1.0:
        raise ValueError(f"resize: scale must be in (0, 1], got {level}")
    h, w = image.shape[:2]
    nh, nw = max(1, round(level * h)), max(1, round(level * w))
    out = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out, None if mask is None else resize_nearest(mask, (nh, nw))


def jpeg(image: np.ndarray, mask: np.ndarray | None, level: float,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """JPEG re-compression at quality ``level`` (1..100)."""
    _check(image, mask, "jpeg")
    q = int(level)
    if q != level or not 1 <= q <= 100:
        raise ValueError(f"jpeg: quality must be an integer in 1..100, got {level}")
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise ValueError("jpeg: OpenCV could not encode the image")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1].copy(), mask


def gaussian_blur(image: np.ndarray, mask: np.ndarray | None, level: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Whole-image Gaussian blur, kernel ``level`` x ``level`` (odd), sigma from the size."""
    _check(image, mask, "gaussian_blur")
    k = _odd_kernel(level, "gaussian_blur")
    return cv2.GaussianBlur(image, (k, k), 0), mask


def gaussian_noise(image: np.ndarray, mask: np.ndarray | None, level: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Additive Gaussian noise of standard deviation ``level`` (0..255 scale), rounded and clipped."""
    _check(image, mask, "gaussian_noise")
    if level < 0:
        raise ValueError(f"gaussian_noise: std must be >= 0, got {level}")
    noisy = image.astype(np.float64) + rng.normal(0.0, float(level), image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8), mask


def edge_band(mask: np.ndarray, radius: int) -> np.ndarray:
    """Bool (H, W): pixels within ``radius`` (square neighbourhood) of a change of the mask, both sides."""
    m = mask.astype(np.uint8)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return (cv2.dilate(m, kernel) != cv2.erode(m, kernel))


def edge_blur(image: np.ndarray, mask: np.ndarray | None, level: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Gaussian blur (kernel ``level``) only within ``level // 2 + 1`` pixels of the forged region's edge."""
    _check(image, mask, "edge_blur")
    k = _odd_kernel(level, "edge_blur")
    if mask is None or not mask.any() or mask.all():
        return image, mask
    band = edge_band(mask, k // 2 + 1)
    out = image.copy()
    out[band] = cv2.GaussianBlur(image, (k, k), 0)[band]
    return out, mask


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """An attack, the name of its parameter and its default ladder (mildest first)."""

    fn: Attack
    parameter: str
    levels: tuple[float, ...]


ATTACKS: dict[str, AttackSpec] = {
    "resize": AttackSpec(resize, "scale", (0.9, 0.8, 0.7, 0.6, 0.5)),
    "jpeg": AttackSpec(jpeg, "quality", (100, 95, 90, 85, 80, 75, 70, 65, 60, 55, 50)),
    "edge_blur": AttackSpec(edge_blur, "kernel", (3, 5, 7, 9, 11, 13, 15)),
    "gaussian_blur": AttackSpec(gaussian_blur, "kernel", (3, 7, 11, 15, 19, 23)),
    "gaussian_noise": AttackSpec(gaussian_noise, "std", (3, 7, 11, 15, 19, 23)),
}


def parse_attacks(text: str, levels: dict[str, Sequence[float]] | None = None) -> dict[str, tuple[float, ...]]:
    """``"jpeg,resize"`` (or ``"all"``) -> {name: levels}; ``levels`` overrides the default ladders."""
    names = list(ATTACKS) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ATTACKS]
    if unknown or not names:
        raise ValueError(f"unknown attack(s) {unknown or text!r}; choose from {sorted(ATTACKS)} or 'all'")
    levels = levels or {}
    return {n: tuple(levels.get(n, ATTACKS[n].levels)) for n in names}


def run_robustness(pairs: Sequence[Pair], predict: Callable[[np.ndarray], tuple[np.ndarray, bool]],
                   attacks: dict[str, Sequence[float]], *, seed: int = 0,
                   progress: Callable[[str], None] | None = None, **run_kwargs: Any) -> list[dict[str, Any]]:
    """Clean run plus one run per (attack, level). Returns rows ``{attack, parameter, level, n_images,
    n_failed, seconds, <METRICS>}``; ``run_kwargs`` go to ``run_pairs`` (rule, on_mismatch, max_pixels)."""
    from mantra_jax.eval.runner import run_pairs

    rows = []

    def record(attack: str, parameter: str, level: float | None, transform) -> None:
        if progress is not None:
            progress(attack if level is None else f"{attack}={level:g}")
        run = run_pairs(pairs, predict, transform=transform, **run_kwargs)
        rows.append({"attack": attack, "parameter": parameter, "level": level,
                     "n_images": run.summary["n_images"], "n_failed": len(run.failed),
                     "seconds": round(run.seconds, 2), **{m: run.summary.get(m) for m in METRICS}})

    record("none", "", None, None)
    for name, levels in attacks.items():
        spec = ATTACKS[name]
        for level in levels:
            key = [seed, zlib.crc32(name.encode()), int(round(float(level) * 1000))]

            def transform(image, mask, k, _fn=spec.fn, _level=float(level), _key=key):
                return _fn(image, mask, _level, np.random.default_rng([*_key, k]))
            record(name, spec.parameter, float(level), transform)
    return rows


def plot_robustness(rows: Sequence[dict[str, Any]], path: Any, metrics: Sequence[str] = ("pixel_auc",
                    "pixel_f1_best")) -> None:
    """One panel per attack: each metric against the attack level, the clean value as a dashed line.

    Written as PNG with matplotlib's Agg backend, atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    from mantra_jax.io.atomic import write_bytes_atomic

    clean = next((r for r in rows if r["attack"] == "none"), None)
    attacks = [a for a in dict.fromkeys(r["attack"] for r in rows) if a != "none"]
    if not attacks:
        raise ValueError("plot_robustness needs at least one attacked run")
    fig, axes = plt.subplots(1, len(attacks), figsize=(4 * len(attacks), 3.2), squeeze=False)
    for ax, attack in zip(axes[0], attacks):
        sub = [r for r in rows if r["attack"] == attack]
        for k, metric in enumerate(metrics):
            colour = f"C{k}"
            xs = [r["level"] for r in sub if r.get(metric) is not None]
            ys = [r[metric] for r in sub if r.get(metric) is not None]
            ax.plot(xs, ys, "o-", color=colour, label=metric)
            if clean is not None and clean.get(metric) is not None:
                ax.axhline(clean[metric], color=colour, linestyle="--", linewidth=0.8)
        ax.set_title(attack)
        ax.set_xlabel(sub[0]["parameter"])
        ax.set_ylim(0.0, 1.0)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("score (dashed: clean)")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
