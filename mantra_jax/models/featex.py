"""The manipulation-trace feature extractor ("Featex"): combined first layer and the VGG-style trunk.

Parameters mirror the release's names: ``b1c1/{regular_kernel, bayar_kernel}`` (the SRM part is a fixed
constant, not a parameter), ``b{i}c{j}/{kernel, bias}`` for the trunk and ``transform/{kernel, bias}``.
No layer downsamples; every convolution pads symmetrically (see ``mantra_jax.ops.conv``).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mantra_jax.ops.constraints import bayar_project
from mantra_jax.ops.conv import conv2d_symmetric, l2_normalize
from mantra_jax.ops.srm import SRM_CHANNELS, srm_kernel

RELEASE_TRUNK: tuple[tuple[int, ...], ...] = ((32,), (64, 64), (128, 128, 128), (256, 256, 256), (256, 256))
BAYAR_CHANNELS = 3


def _bayar_init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jnp.ndarray:
    return bayar_project(nn.initializers.glorot_uniform()(key, shape, dtype))


class SymConv(nn.Module):
    """k x k convolution with bias after symmetric padding. (B, H, W, I) -> (B, H, W, features)."""

    features: int
    kernel_size: int = 3
    dtype: Any = jnp.float32
    kernel_grad: str = "xla"
    conv_algorithm: str = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        k = self.kernel_size
        kernel = self.param("kernel", nn.initializers.glorot_uniform(), (k, k, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return conv2d_symmetric(x.astype(self.dtype), kernel.astype(self.dtype), bias.astype(self.dtype),
                                kernel_grad=self.kernel_grad, algorithm=self.conv_algorithm)


class CombinedFirstLayer(nn.Module):
    """b1c1: 5x5 plain (trainable) + SRM (fixed) + Bayar (constrained) kernels, no bias, ReLU.

    (B, H, W, 3) -> (B, H, W, plain_filters + 12), channels ordered plain, SRM, Bayar.
    """

    plain_filters: int = 4
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        regular = self.param("regular_kernel", nn.initializers.glorot_uniform(), (5, 5, 3, self.plain_filters))
        bayar = self.param("bayar_kernel", _bayar_init, (5, 5, 3, BAYAR_CHANNELS))
        srm = jnp.asarray(srm_kernel())
        kernel = jnp.concatenate([regular, srm, bayar], axis=-1).astype(self.dtype)
        return nn.relu(conv2d_symmetric(x.astype(self.dtype), kernel))


class FeatureExtractor(nn.Module):
    """Featex: (B, H, W, 3) in [-1, 1] -> (B, H, W, transform_features), unit L2 norm per pixel.

    Attributes:
      plain_filters: trainable first-layer filters (4 for Ptrain2-4, 20 for Ptrain0-1).
      trunk: output widths per block; block 1 lists only b1c2 (b1c1 is the first layer).
      transform_features: width of the final ``transform`` convolution.
      transform_activation: "none" or "tanh" (Ptrain0).
      dtype: computation dtype of the convolutions (parameters stay float32; the output is float32).
      kernel_grad: how trunk kernel gradients are computed: "auto" (per-tap matmuls on CPU where faster),
        "xla" or "matmul"; see ``mantra_jax.ops.conv.conv2d_symmetric``. The forward pass is identical.
      conv_algorithm: how the 3 x 3 trunk convolutions are computed: "auto" (Winograd F(4x4, 3x3) on CPU
        for float32 layers of 64 or more input channels, where it is faster; direct elsewhere), "direct",
        "winograd2" or "winograd4"; see ``mantra_jax.ops.conv.resolve_algorithm``. Equal up to float rounding.
    """

    plain_filters: int = 4
    trunk: tuple[tuple[int, ...], ...] = RELEASE_TRUNK
    transform_features: int = 256
    transform_activation: str = "none"
    dtype: Any = jnp.float32
    kernel_grad: str = "xla"
    conv_algorithm: str = "auto"

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"Featex expects (B, H, W, 3) images, got shape {x.shape}")
        if self.transform_activation not in ("none", "tanh"):
            raise ValueError(f"transform_activation must be 'none' or 'tanh', got {self.transform_activation!r}")
        y = CombinedFirstLayer(self.plain_filters, self.dtype, name="b1c1")(x)
        self.sow("intermediates", "b1c1_act", y)
        for block, widths in enumerate(self.trunk, start=1):
            first = 2 if block == 1 else 1
            for j, width in enumerate(widths, start=first):
                name = f"b{block}c{j}"
                y = nn.relu(SymConv(width, 3, self.dtype, self.kernel_grad, self.conv_algorithm, name=name)(y))
                self.sow("intermediates", f"{name}_act", y)
        y = SymConv(self.transform_features, 3, self.dtype, self.kernel_grad, self.conv_algorithm,
                    name="transform")(y)
        if self.transform_activation == "tanh":
            y = jnp.tanh(y)
        return l2_normalize(y.astype(jnp.promote_types(y.dtype, jnp.float32)), axis=-1)
