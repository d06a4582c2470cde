"""Convolutions of the release: symmetric-padded VALID convolutions for the feature extractor and zero
'same' convolutions for the ConvLSTM and the prediction layer. Layout NHWC / HWIO, stride 1.

Symmetric padding repeats the edge sample (numpy ``mode='symmetric'``: ``[b a | a b c | c b]``), not
``'reflect'``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from mantra_jax.ops.conv_grad import KERNEL_GRADS, conv_valid_matmul_grad
from mantra_jax.ops.winograd import winograd_conv3x3

_DIMS = ("NHWC", "HWIO", "NHWC")

ALGORITHMS = ("direct", "winograd2", "winograd3", "winograd4")  # Winograd: 3 x 3 kernels only


def check_choices(algorithm: str, kernel_grad: str, kernel_shape: tuple[int, ...]) -> None:
    """ValueError unless ``algorithm`` (ALGORITHMS) and ``kernel_grad`` (KERNEL_GRADS) are concrete choices
    that fit an HWIO ``kernel_shape``; "auto" is decided per layer by ``mantra_jax.models.compute``."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"conv algorithm must be one of {ALGORITHMS} (a concrete choice: mantra_jax.models."
                         f"compute resolves 'auto'), got {algorithm!r}")
    if kernel_grad not in KERNEL_GRADS:
        raise ValueError(f"kernel_grad must be one of {KERNEL_GRADS} (a concrete choice: mantra_jax.models."
                         f"compute resolves 'auto'), got {kernel_grad!r}")
    if algorithm != "direct" and tuple(kernel_shape[:2]) != (3, 3):
        raise ValueError(f"{algorithm} applies to 3 x 3 kernels only, got {tuple(kernel_shape[:2])}")


def _check(x: jnp.ndarray, kernel: jnp.ndarray) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected x of shape (B, H, W, C), got {x.shape}")
    if kernel.ndim != 4 or kernel.shape[2] != x.shape[-1]:
        raise ValueError(f"kernel {kernel.shape} does not fit input {x.shape} (HWIO, I = C)")
    if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel must have odd spatial size, got {kernel.shape[:2]}")


def symmetric_pad(x: jnp.ndarray, pad_h: int, pad_w: int) -> jnp.ndarray:
    """Pads (B, H, W, C) by ``pad_h`` rows and ``pad_w`` columns on each side, edge sample repeated.

    Unlike ``jnp.pad(mode='symmetric')`` this works for pads larger than the image (the mirror repeats).
    """
    if pad_h == 0 and pad_w == 0:
        return x
    if pad_h <= x.shape[1] and pad_w <= x.shape[2]:
        return jnp.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)), mode="symmetric")
    return x[:, _symmetric_index(x.shape[1], pad_h)][:, :, _symmetric_index(x.shape[2], pad_w)]


def _symmetric_index(n: int, pad: int) -> np.ndarray:
    """Indices of a symmetric (edge-repeating) extension of range(n) by ``pad`` on each side."""
    idx = np.arange(-pad, n + pad)
    period = 2 * n
    idx = np.mod(idx, period)
    return np.where(idx < n, idx, period - 1 - idx)


def conv2d(x: jnp.ndarray, kernel: jnp.ndarray, padding: str = "VALID",
           precision: lax.Precision | None = None) -> jnp.ndarray:
    """Plain stride-1 convolution, NHWC x HWIO -> NHWC."""
    _check(x, kernel)
    return lax.conv_general_dilated(
        x, kernel.astype(x.dtype), window_strides=(1, 1), padding=padding,
        dimension_numbers=_DIMS, precision=precision)


def conv2d_symmetric(x: jnp.ndarray, kernel: jnp.ndarray, bias: jnp.ndarray | None = None,
                     precision: lax.Precision | None = None, kernel_grad: str = "xla",
                     algorithm: str = "direct") -> jnp.ndarray:
    """Feature-extractor convolution: pad k//2 symmetrically, then VALID. (B,H,W,I) -> (B,H,W,O).

    Concrete choices only (``check_choices``; the models' per-layer ones come from
    ``mantra_jax.models.compute``). ``algorithm``: "direct" (XLA's convolution), "winograd2" / "winograd3" /
    "winograd4" (3 x 3 kernels: Winograd F(m x m, 3x3) as matmuls, ``mantra_jax.ops.winograd``; equal up to
    float rounding; gradients autodiff's). ``kernel_grad`` (direct path only): "xla" (autodiff) or "matmul"
    (kernel gradient as per-tap matmuls, faster on CPU, see ``mantra_jax.ops.conv_grad``). With a
    ``precision`` the direct convolution and autodiff run whatever the choices.
    """
    _check(x, kernel)
    check_choices(algorithm, kernel_grad, kernel.shape)
    kh, kw = kernel.shape[:2]
    xp = symmetric_pad(x, kh // 2, kw // 2)
    if precision is None and algorithm != "direct":
        y = winograd_conv3x3(xp, kernel.astype(x.dtype), int(algorithm[-1]))
        return y if bias is None else y + bias.astype(y.dtype)
    if kernel_grad == "matmul" and precision is None:
        y = conv_valid_matmul_grad(xp, kernel.astype(x.dtype))
    else:
        y = conv2d(xp, kernel, "VALID", precision)
    if bias is not None:
        y = y + bias.astype(y.dtype)
    return y


def conv2d_symmetric_mean(x: jnp.ndarray, kernel: jnp.ndarray, bias: jnp.ndarray | None = None) -> jnp.ndarray:
    """Spatial mean of ``conv2d_symmetric(x, kernel, bias)`` without the full-resolution convolution.
    (B, H, W, I) x (k, k, I, O) -> (B, O).

    The mean is linear, so it moves inside the convolution: with ``xp`` the symmetric-padded input,
    ``mean_p y[p] = sum_(i,j) mean_p xp[p + (i, j)] @ kernel[i, j] + bias``, i.e. k*k window means of the
    input (from k row sums and k column sums of ``xp``) and a (B, k*k*I) x (k*k*I, O) product instead of an
    H x W x k*k*I x O convolution. For the IMC head (256 -> 385 at 3x3) this removes about a fifth of the
    training FLOPs of Ptrain4. Equal to the mean of the convolution up to float rounding (tested).
    """
    _check(x, kernel)
    b, h, w, c = x.shape
    kh, kw = kernel.shape[:2]
    acc = jnp.promote_types(x.dtype, jnp.float32)
    xp = symmetric_pad(x, kh // 2, kw // 2).astype(acc)
    rows = jnp.stack([jnp.sum(xp[:, i:i + h], axis=1) for i in range(kh)], axis=1)  # (B, kh, Wp, C)
    means = jnp.stack([jnp.sum(rows[:, :, j:j + w], axis=2) for j in range(kw)], axis=2) / (h * w)  # (B,kh,kw,C)
    y = jnp.einsum("bijc,ijco->bo", means, kernel.astype(acc), precision=lax.Precision.HIGHEST)
    if bias is not None:
        y = y + bias.astype(y.dtype)
    return y


def conv2d_same(x: jnp.ndarray, kernel: jnp.ndarray, bias: jnp.ndarray | None = None,
                precision: lax.Precision | None = None) -> jnp.ndarray:
    """Zero-padded 'same' convolution (Keras ``padding='same'``). (B,H,W,I) -> (B,H,W,O)."""
    y = conv2d(x, kernel, "SAME", precision)
    if bias is not None:
        y = y + bias.astype(y.dtype)
    return y


def l2_normalize(x: jnp.ndarray, axis: int = -1, eps: float = 1e-12) -> jnp.ndarray:
    """``x * rsqrt(max(sum(x^2), eps))`` along ``axis`` (Keras ``K.l2_normalize``)."""
    sq = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * lax.rsqrt(jnp.maximum(sq, eps))


__all__ = ["ALGORITHMS", "check_choices", "symmetric_pad", "conv2d", "conv2d_symmetric", "conv2d_symmetric_mean", "conv2d_same", "l2_normalize"]
