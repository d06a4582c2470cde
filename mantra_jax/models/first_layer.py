"""The feature extractor's first layer, chosen by name (paper Table 3).

| name       | layer                                                        | kernel | outputs          |
|------------|--------------------------------------------------------------|--------|------------------|
| ``plain3`` | Conv2D with bias                                             | 3x3    | plain_filters    |
| ``plain5`` | Conv2D with bias                                             | 5x5    | plain_filters    |
| ``bayar``  | BayarConv2D (constrained, no bias)                           | 5x5    | 3                |
| ``srm``    | SRMConv2D (fixed, no parameters)                             | 5x5    | 9                |
| ``combined``| plain (no bias) + SRM + Bayar, concatenated (the release's) | 5x5    | plain_filters+12 |

Every choice is followed by a ReLU, as the release's combined layer is. Parameters live under ``b1c1``:
``{kernel, bias}`` (plain), ``{bayar_kernel}`` (Bayar), ``{regular_kernel, bayar_kernel}`` (combined); the
SRM-only layer has none. The paper counts 3 SRM filters; like the release, ours applies each of the three
base filters to each colour separately (``mantra_jax.ops.srm``), hence 9 output channels, so the paper's
"10+3+3" combined layer of 16 outputs is 4 plain + 9 SRM + 3 Bayar here (the release's Ptrain2-4 layer).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mantra_jax.ops.constraints import bayar_project
from mantra_jax.ops.conv import conv2d_symmetric
from mantra_jax.ops.srm import SRM_CHANNELS, srm_kernel

BAYAR_CHANNELS = 3
FIRST_LAYERS: tuple[str, ...] = ("plain3", "plain5", "bayar", "srm", "combined")
DEFAULT_FIRST_LAYER = "combined"
BAYAR_LAYERS: tuple[str, ...] = ("combined", "bayar")  # the first layers holding a (constrained) bayar_kernel
_KERNEL = {"plain3": 3, "plain5": 5, "bayar": 5, "srm": 5, "combined": 5}
_FIXED = {"bayar": BAYAR_CHANNELS, "srm": SRM_CHANNELS, "combined": SRM_CHANNELS + BAYAR_CHANNELS}


def check_first_layer(kind: str, plain_filters: int) -> None:
    """Raises ValueError for an unknown name or a plain-filter count the layer cannot have."""
    if kind not in FIRST_LAYERS:
        raise ValueError(f"unknown first layer {kind!r}; known: {', '.join(FIRST_LAYERS)}")
    if kind in ("bayar", "srm"):
        if plain_filters != 0:
            raise ValueError(f"first layer {kind!r} has no plain filters; set plain_filters=0, got {plain_filters}")
    elif plain_filters < 1:
        raise ValueError(f"first layer {kind!r} needs plain_filters >= 1, got {plain_filters}")


def first_layer_kernel(kind: str) -> int:
    """Kernel size of the first layer ``kind`` (3 or 5)."""
    check_first_layer(kind, 0 if kind in ("bayar", "srm") else 1)
    return _KERNEL[kind]


def first_layer_features(kind: str, plain_filters: int) -> int:
    """Output channels of the first layer ``kind`` with ``plain_filters`` trainable plain filters."""
    check_first_layer(kind, plain_filters)
    return plain_filters + _FIXED.get(kind, 0)


def plain_filters_for(kind: str, features: int) -> int:
    """The plain-filter count giving ``features`` outputs (``features`` is ignored for bayar / srm, whose
    widths are fixed): ``features - 12`` for combined (16 -> 4, the release's Ptrain2-4)."""
    if kind in ("bayar", "srm"):
        return 0
    plain = features - _FIXED.get(kind, 0)
    check_first_layer(kind, plain)
    return plain


def _bayar_init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jnp.ndarray:
    return bayar_project(nn.initializers.glorot_uniform()(key, shape, dtype))


class FirstLayer(nn.Module):
    """The first layer ``kind`` (see the module docstring). (B, H, W, 3) -> (B, H, W, first_layer_features).

    ``combined`` is the release's b1c1: channels ordered plain, SRM, Bayar."""

    kind: str = DEFAULT_FIRST_LAYER
    plain_filters: int = 4
    dtype: Any = jnp.float32

    SCOPE: ClassVar[str] = "b1c1"  # its parameter-tree name inside the feature extractor

    @nn.nowrap
    def own_constraints(self) -> dict[str, Callable[[jnp.ndarray], jnp.ndarray]]:
        """Its constrained weights (``mantra_jax.models.constraints``): the Bayar kernel's projection, where
        it has one (Table 3's ``plain3`` / ``plain5`` / ``srm`` layers have nothing constrained)."""
        return {"bayar_kernel": bayar_project} if self.kind in BAYAR_LAYERS else {}

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        check_first_layer(self.kind, self.plain_filters)
        k = _KERNEL[self.kind]
        if self.kind in ("plain3", "plain5"):
            kernel = self.param("kernel", nn.initializers.glorot_uniform(), (k, k, 3, self.plain_filters))
            bias = self.param("bias", nn.initializers.zeros_init(), (self.plain_filters,))
            return nn.relu(conv2d_symmetric(x.astype(self.dtype), kernel.astype(self.dtype),
                                            bias.astype(self.dtype)))
        parts = []
        if self.kind == "combined":
            parts.append(self.param("regular_kernel", nn.initializers.glorot_uniform(),
                                    (k, k, 3, self.plain_filters)))
        if self.kind in ("combined", "srm"):
            parts.append(jnp.asarray(srm_kernel(self.dtype)))
        if self.kind in BAYAR_LAYERS:
            parts.append(self.param("bayar_kernel", _bayar_init, (k, k, 3, BAYAR_CHANNELS)))
        kernel = jnp.concatenate(parts, axis=-1).astype(self.dtype)
        return nn.relu(conv2d_symmetric(x.astype(self.dtype), kernel))
