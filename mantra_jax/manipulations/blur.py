"""Blur family (hierarchy L1 node 1): BoxBlur, GaussianBlur, MedianBlur with K in {3, 5, ..., 33}; WaveletBlur
with K in {3, 5, 7, 9}.

Parameter meanings (the hierarchy figure only gives the letter K, so these are our definitions):
- BoxBlur-K: mean over a K x K window (cv2.blur), border reflected without repeating the edge pixel
  (BORDER_REFLECT_101).
- GaussianBlur-K: K x K Gaussian (cv2.GaussianBlur with sigma 0), i.e. sigma derived from K by OpenCV's rule
  sigma = 0.3 * ((K - 1) / 2 - 1) + 0.8 (1.7 for K=9 ... 5.3 for K=33), except that for K <= 7 OpenCV uses
  its fixed kernels [1, 2, 1]/4, [1, 4, 6, 4, 1]/16 and [2, 7, 14, 18, 14, 7, 2]/64; separable,
  BORDER_REFLECT_101, OpenCV's fixed-point arithmetic for uint8.
- MedianBlur-K: per-channel median over a K x K window (cv2.medianBlur; replicated border).
- WaveletBlur-K: wavelet shrinkage with the 2-D Haar transform. J = (K - 1) / 2 decomposition levels
  (1, 2, 3, 4 for K = 3, 5, 7, 9, so the coarsest basis functions span 2**J = 2 ... 16 pixels, comparable to
  a K-wide kernel), and every detail coefficient is soft-thresholded at t = K grey levels. The transform
  uses the averaging normalisation (approximation = mean of a 2x2 block, details = quarter sums of signed
  differences), so coefficients are in grey levels at every scale and t has the same meaning at each level.
  Larger K means both coarser detail removal and a higher threshold: a monotone family of blurs that
  removes low-contrast texture while keeping strong edges (unlike the linear blurs above). The image is
  padded symmetrically to a multiple of 2**J and cropped back.

All are per-channel and deterministic; the rng is ignored.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from mantra_jax.manipulations._common import Builder, check_image, ignore_rng, parse_number, to_uint8

WAVELET_KERNEL_SIZES: tuple[int, ...] = (3, 5, 7, 9)


def _check_odd(k: int, name: str, largest: int = 255) -> None:
    if not isinstance(k, (int, np.integer)) or k < 3 or k % 2 == 0 or k > largest:
        raise ValueError(f"{name}: kernel size must be an odd integer in [3, {largest}], got {k!r}")


def gaussian_sigma(k: int) -> float:
    """OpenCV's sigma for a K x K Gaussian kernel when sigma is given as 0 (used for K >= 9)."""
    return 0.3 * ((k - 1) * 0.5 - 1.0) + 0.8


def box_blur(image: np.ndarray, k: int) -> np.ndarray:
    """K x K mean filter. image (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    _check_odd(k, "box_blur")
    return cv2.blur(image, (k, k), borderType=cv2.BORDER_REFLECT_101)


def gaussian_blur(image: np.ndarray, k: int) -> np.ndarray:
    """K x K Gaussian filter with sigma = gaussian_sigma(K). image (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    _check_odd(k, "gaussian_blur")
    return cv2.GaussianBlur(image, (k, k), sigmaX=0.0, sigmaY=0.0, borderType=cv2.BORDER_REFLECT_101)


def median_blur(image: np.ndarray, k: int) -> np.ndarray:
    """K x K per-channel median filter. image (H, W, 3) uint8 -> (H, W, 3) uint8."""
    check_image(image)
    _check_odd(k, "median_blur")
    return cv2.medianBlur(np.ascontiguousarray(image), k)


def haar_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One level of the averaging-normalised 2-D Haar transform.

    x: (2h, 2w, C) float. Returns (approx, vertical, horizontal, diagonal), each (h, w, C), with
    a, b, c, d the top-left, top-right, bottom-left, bottom-right pixels of each 2x2 block:
    approx = (a+b+c+d)/4, vertical = (a+b-c-d)/4, horizontal = (a-b+c-d)/4, diagonal = (a-b-c+d)/4.
    """
    if x.ndim != 3 or x.shape[0] % 2 or x.shape[1] % 2:
        raise ValueError(f"haar_forward needs (2h, 2w, C), got {x.shape}")
    a = x[0::2, 0::2]
    b = x[0::2, 1::2]
    c = x[1::2, 0::2]
    d = x[1::2, 1::2]
    s_top, d_top = a + b, a - b
    s_bot, d_bot = c + d, c - d
    return (s_top + s_bot) * 0.25, (s_top - s_bot) * 0.25, (d_top + d_bot) * 0.25, (d_top - d_bot) * 0.25


def haar_inverse(approx: np.ndarray, vert: np.ndarray, horiz: np.ndarray, diag: np.ndarray) -> np.ndarray:
    """Inverse of haar_forward: four (h, w, C) bands -> (2h, 2w, C)."""
    h, w, ch = approx.shape
    out = np.empty((2 * h, 2 * w, ch), dtype=np.result_type(approx, vert, horiz, diag))
    p, m = approx + vert, approx - vert
    q, n = horiz + diag, horiz - diag
    out[0::2, 0::2] = p + q
    out[0::2, 1::2] = p - q
    out[1::2, 0::2] = m + n
    out[1::2, 1::2] = m - n
    return out


def _soft(x: np.ndarray, t: float) -> np.ndarray:
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


def wavelet_shrink(image: np.ndarray, levels: int, threshold: float) -> np.ndarray:
    """Haar wavelet soft-threshold shrinkage.

    image (H, W, 3) uint8; `levels` >= 1 Haar levels; `threshold` >= 0 in grey levels, applied to every
    detail coefficient. Returns (H, W, 3) uint8.
    """
    check_image(image)
    if levels < 1 or threshold < 0:
        raise ValueError(f"wavelet_shrink: need levels >= 1 and threshold >= 0, got {levels}, {threshold}")
    height, width = image.shape[:2]
    block = 2**levels
    pad_h, pad_w = -height % block, -width % block
    x = image.astype(np.float32)
    if pad_h or pad_w:
        x = np.pad(x, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")
    details = []
    for _ in range(levels):
        x, v, h, d = haar_forward(x)
        details.append((_soft(v, threshold), _soft(h, threshold), _soft(d, threshold)))
    for v, h, d in reversed(details):
        x = haar_inverse(x, v, h, d)
    return to_uint8(x[:height, :width])


def wavelet_blur(image: np.ndarray, k: int) -> np.ndarray:
    """WaveletBlur-K: Haar shrinkage with (K-1)/2 levels and threshold K grey levels. (H, W, 3) uint8."""
    _check_odd(k, "wavelet_blur", largest=21)
    return wavelet_shrink(image, (k - 1) // 2, float(k))


def _builder(fn, prefix: str = "K") -> Builder:
    def build(token: str):
        return ignore_rng(functools.partial(fn, k=int(parse_number(token, prefix))))

    return build


BUILDERS: dict[str, Builder] = {
    "BoxBlur": _builder(box_blur),
    "GaussianBlur": _builder(gaussian_blur),
    "MedianBlur": _builder(median_blur),
    "WaveletBlur": _builder(wavelet_blur),
}
