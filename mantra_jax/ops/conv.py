"""Convolutions of the release: symmetric-padded VALID convolutions for the feature extractor and zero
'same' convolutions for the ConvLSTM and the prediction layer. Layout NHWC / HWIO, stride 1.

Symmetric padding repeats the edge sample (numpy ``mode='symmetric'``: ``[b a | a b c | c b]``), not
``'reflect'``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from mantra_jax.ops.conv_grad import conv_valid_matmul_grad, resolve_kernel_grad
from mantra_jax.ops.winograd import winograd_conv3x3

# When "auto" picks the per-tap matmul kernel gradient on CPU (measured with jax 0.12 on 2 cores, see
# experiments/bench_train.py): XLA's own kernel gradient runs at about 50 GFLOP/s for batch x height x
# width = 16384 output pixels but drops to about 20 GFLOP/s at 65536, while the per-tap matmuls run at
# 80-135 GFLOP/s from 64 input channels up. Below 64 input channels, or at 64 with few pixels, XLA's is
# as fast or faster.
MATMUL_GRAD_MIN_CHANNELS = 128
MATMUL_GRAD_MIN_CHANNELS_LARGE = 64
MATMUL_GRAD_LARGE_PIXELS = 32768


def auto_uses_matmul(input_channels: int, output_pixels: int) -> bool:
    """Whether ``kernel_grad="auto"`` computes a CPU layer's kernel gradient as per-tap matmuls."""
    return input_channels >= MATMUL_GRAD_MIN_CHANNELS or (
        input_channels >= MATMUL_GRAD_MIN_CHANNELS_LARGE and output_pixels >= MATMUL_GRAD_LARGE_PIXELS)

_DIMS = ("NHWC", "HWIO", "NHWC")

ALGORITHMS = ("auto", "direct", "winograd2", "winograd3", "winograd4")
# What "auto" picks on the CPU backend for float32 3 x 3 layers (measured side by side on 2 cores, whole
# Ptrain4 at 256 x 256, see experiments/bench_forward.py): Winograd F(2x2, 3x3) from 32 input channels
# (2.25x fewer multiplications; its float32 error is that of the direct convolution) and F(4x4, 3x3)
# from 256 (4x fewer; 3-5x the float32 error, so only where most FLOPs are: with F(4x4) on every layer
# from 64 channels the 23 x 37 reference case exceeds its 2e-5 bound in cLSTM). Direct below 32
# channels (the transforms cost more than they save), for every other kernel size, dtype and backend.
WINOGRAD_MIN_CHANNELS = 32
WINOGRAD4_MIN_CHANNELS = 256


def resolve_algorithm(algorithm: str, kernel_shape: tuple[int, ...], dtype) -> str:
    """The convolution algorithm ``conv2d_symmetric`` runs for ``algorithm`` ("auto", "direct",
    "winograd2", "winograd4") and an HWIO kernel shape; Winograd only applies to 3 x 3 kernels."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"conv algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if tuple(kernel_shape[:2]) != (3, 3):
        return "direct"
    if algorithm == "auto":
        if jax.default_backend() != "cpu" or jnp.dtype(dtype) != jnp.float32:
            return "direct"
        if kernel_shape[2] >= WINOGRAD4_MIN_CHANNELS:
            return "winograd4"
        return "winograd2" if kernel_shape[2] >= WINOGRAD_MIN_CHANNELS else "direct"
    return algorithm


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

    ``algorithm``: "direct" (XLA's convolution), "winograd2" / "winograd4" (3 x 3 kernels: Winograd
    F(2x2, 3x3) / F(4x4, 3x3) as matmuls, ``mantra_jax.ops.winograd``; equal up to float rounding) or
    "auto" (``resolve_algorithm``: F(4x4) on CPU where it is faster). ``kernel_grad`` (direct path only):
    "xla" (autodiff), "matmul" (kernel gradient as per-tap matmuls, faster on CPU, see
    ``mantra_jax.ops.conv_grad``) or "auto" (matmul on the CPU backend for the layers where it is faster,
    ``auto_uses_matmul``; XLA elsewhere). Winograd's gradients are autodiff's.
    """
    _check(x, kernel)
    kh, kw = kernel.shape[:2]
    xp = symmetric_pad(x, kh // 2, kw // 2)
    algo = resolve_algorithm(algorithm, kernel.shape, x.dtype) if precision is None else "direct"
    if algo != "direct":
        y = winograd_conv3x3(xp, kernel.astype(x.dtype), int(algo[-1]))
        return y if bias is None else y + bias.astype(y.dtype)
    mode = resolve_kernel_grad(kernel_grad)
    if mode == "auto":
        mode = "matmul" if auto_uses_matmul(x.shape[-1], x.shape[0] * x.shape[1] * x.shape[2]) else "xla"
    if mode == "matmul" and precision is None:
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


__all__ = ["ALGORITHMS", "resolve_algorithm", "symmetric_pad", "conv2d", "conv2d_symmetric", "conv2d_symmetric_mean", "conv2d_same", "l2_normalize"]
