"""The manipulation-trace feature extractor ("Featex"): a first layer, a trunk of 3x3 blocks, an
L2-normalised ``transform`` convolution. No layer downsamples; every convolution pads symmetrically (see
``mantra_jax.ops.conv``).

The architecture is a ``FeatexConfig`` (plain data); ``FeatureExtractor`` owns its parameters. With the
defaults (the combined first layer, every block plain conv + ReLU) it is the release's network, whose
parameter names it mirrors: ``b1c1/{regular_kernel, bayar_kernel}`` (the SRM part is a fixed constant, not
a parameter), ``b{i}c{j}/{kernel, bias}`` for the trunk and ``transform/{kernel, bias}``. Other first layers:
``mantra_jax.models.first_layer``; the paper's Table 2 / 5 backbones: ``mantra_jax.models.backbones``.

Trunk block units (``FeatexConfig.units``, one per block; empty: all ``conv``):

* ``conv``: each width a 3x3 conv + ReLU (VGG; the release).
* ``bn``: each width a 3x3 conv + batch norm + ReLU (DnCNN); batch norm ``b{i}c{j}_bn/{scale, bias}``
  with moving statistics ``batch_stats/b{i}c{j}_bn/{mean, var}`` (Keras' momentum 0.99, epsilon 1e-3).
* ``residual``: widths taken in pairs (a, b): ``relu(bn(conv_b(relu(conv_a(x)))) + shortcut(x))``, the
  shortcut a 1x1 projection ``b{i}c{j}_proj/{kernel, bias}`` when the width changes, else the identity
  (ResNet with projection shortcuts).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import flax.linen as nn
import jax.numpy as jnp

from mantra_jax.models.compute import Compute
from mantra_jax.models.first_layer import DEFAULT_FIRST_LAYER, FirstLayer, check_first_layer
from mantra_jax.models.structure import Layer, featex_layers, trunk_blocks
from mantra_jax.models.structure import radius as structure_radius
from mantra_jax.ops import batchnorm
from mantra_jax.ops.conv import conv2d_symmetric, l2_normalize

RELEASE_TRUNK: tuple[tuple[int, ...], ...] = ((32,), (64, 64), (128, 128, 128), (256, 256, 256), (256, 256))
UNITS: tuple[str, ...] = ("conv", "bn", "residual")
TRANSFORM_ACTIVATIONS: tuple[str, ...] = ("none", "tanh")
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3


@dataclasses.dataclass(frozen=True)
class FeatexConfig:
    """Architecture of the feature extractor (hashable, so a module attribute).

    Attributes:
      plain_filters: trainable plain filters of the first layer (4 for Ptrain2-4, 20 for Ptrain0-1; 0 for
        the Bayar-only and SRM-only layers).
      trunk: output widths per block; block 1 lists only b1c2, b1c3, ... (b1c1 is the first layer).
      transform_features: width of the final (L2-normalised) ``transform`` convolution.
      transform_activation: "none" or "tanh" (Ptrain0).
      first_layer: a name of ``mantra_jax.models.first_layer.FIRST_LAYERS`` ("combined": the release's).
      units: one of ``UNITS`` per trunk block; empty means all "conv" (the release).
    """

    plain_filters: int = 4
    trunk: tuple[tuple[int, ...], ...] = RELEASE_TRUNK
    transform_features: int = 256
    transform_activation: str = "none"
    first_layer: str = DEFAULT_FIRST_LAYER
    units: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "trunk", tuple(tuple(int(w) for w in block) for block in self.trunk))
        object.__setattr__(self, "units", tuple(self.units))
        check_first_layer(self.first_layer, self.plain_filters)
        if self.transform_activation not in TRANSFORM_ACTIVATIONS:
            raise ValueError(f"transform_activation must be 'none' or 'tanh', got {self.transform_activation!r}")
        if self.units and len(self.units) != len(self.trunk):
            raise ValueError(f"units lists {len(self.units)} blocks, the trunk has {len(self.trunk)}")
        for block, unit in zip(self.trunk, self.block_units):
            if unit not in UNITS:
                raise ValueError(f"unknown block unit {unit!r}; known: {', '.join(UNITS)}")
            if unit == "residual" and len(block) % 2:
                raise ValueError(f"a residual block lists widths in pairs, got {block}")
        if min((w for block in self.trunk for w in block), default=1) < 1 or self.transform_features < 1:
            raise ValueError("every width must be >= 1")

    @property
    def block_units(self) -> tuple[str, ...]:
        return self.units or ("conv",) * len(self.trunk)

    def layers(self) -> tuple[Layer, ...]:
        """The convolutions in order (``mantra_jax.models.structure.featex_layers``)."""
        return featex_layers(self)

    @property
    def num_convs(self) -> int:
        """3x3 / 5x5 convolutions on the longest path: first layer, trunk, transform (no 1x1 shortcuts)."""
        return sum(layer.on_longest_path for layer in self.layers())

    @property
    def radius(self) -> int:
        """Pixels one output pixel reads on each side: the kernels' reach summed over the longest path."""
        return structure_radius(self.layers())

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input square one output pixel depends on, ``2 radius + 1``."""
        return 2 * self.radius + 1

    def module(self, *, compute: Compute = Compute(), name: str | None = None) -> "FeatureExtractor":
        """The module, named ``name`` (default ``FeatureExtractor.SCOPE``, its scope in both models)."""
        return FeatureExtractor(self, compute, name=name or FeatureExtractor.SCOPE)


class SymConv(nn.Module):
    """k x k convolution with bias after symmetric padding. (B, H, W, I) -> (B, H, W, features)."""

    features: int
    kernel_size: int = 3
    compute: Compute = Compute()

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        k, c = self.kernel_size, self.compute
        kernel = self.param("kernel", nn.initializers.glorot_uniform(), (k, k, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        rule = c.layer_rule()
        return conv2d_symmetric(x.astype(c.dtype), kernel.astype(c.dtype), bias.astype(c.dtype),
                                kernel_grad=rule.kernel_grad(x.shape[-1], math.prod(x.shape[:3])),
                                algorithm=rule.algorithm(kernel.shape))


class BatchNorm(nn.Module):
    """Keras-style batch norm over all but the last axis, with scale and offset. (..., C) -> (..., C)."""

    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPSILON

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones_init(), (c,))
        bias = self.param("bias", nn.initializers.zeros_init(), (c,))
        mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        x32 = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        if train:
            m, v = batchnorm.batch_moments(x32)
            if not self.is_initializing():
                mean.value = batchnorm.ema_update(mean.value, m, self.momentum)
                var.value = batchnorm.ema_update(var.value, v, self.momentum)
        else:
            m, v = mean.value, var.value
        return (batchnorm.normalize(x32, m, v, self.epsilon) * scale + bias).astype(x.dtype)


class FeatureExtractor(nn.Module):
    """Featex: (B, H, W, 3) in [-1, 1] -> (B, H, W, transform_features), unit L2 norm per pixel.

    Attributes:
      config: the architecture (``FeatexConfig``; its fields read as attributes of the module too).
      compute: how the trunk computes (``mantra_jax.models.compute.Compute``: its dtype, kernel gradients
        and convolution algorithm); the first layer, the parameters and the output stay float32 (float64 when
        compute.dtype is float64, for reference runs).
    """

    config: FeatexConfig = FeatexConfig()
    compute: Compute = Compute()

    SCOPE: ClassVar[str] = "Featex"  # its parameter-tree name inside ManTraNet and IMCClassifier

    @nn.nowrap
    def submodules(self) -> tuple[tuple[str, nn.Module], ...]:
        """(scope, unbound module) of its submodules that carry constraints (``mantra_jax.models.constraints``
        walks them): the first layer."""
        return ((FirstLayer.SCOPE, FirstLayer(self.config.first_layer, self.config.plain_filters, parent=None)),)

    plain_filters = property(lambda self: self.config.plain_filters)
    trunk = property(lambda self: self.config.trunk)
    transform_features = property(lambda self: self.config.transform_features)
    transform_activation = property(lambda self: self.config.transform_activation)
    first_layer = property(lambda self: self.config.first_layer)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
        """x: (B, H, W, 3). train: batch statistics in the batch norms (``bn`` / ``residual`` units)."""
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"Featex expects (B, H, W, 3) images, got shape {x.shape}")
        cfg = self.config

        def conv(h: jnp.ndarray, width: int, name: str) -> jnp.ndarray:
            return SymConv(width, 3, self.compute, name=name)(h)

        # at least float32 whatever compute.dtype (float32 for bfloat16 / float32; float64 only for a float64
        # reference run): raw-pixel SRM / Bayar residuals are small differences of large values (0.03 % of
        # the FLOPs); the trunk casts its input to compute.dtype
        y = FirstLayer(cfg.first_layer, cfg.plain_filters, jnp.promote_types(self.compute.dtype, jnp.float32),
                       name=FirstLayer.SCOPE)(x)
        self.sow("intermediates", f"{FirstLayer.SCOPE}_act", y)
        for unit, names, widths in trunk_blocks(cfg):
            if unit == "residual":
                for i in range(0, len(widths), 2):
                    a, b = names[i], names[i + 1]
                    h = nn.relu(conv(y, widths[i], a))
                    self.sow("intermediates", f"{a}_act", h)
                    h = BatchNorm(name=f"{b}_bn")(conv(h, widths[i + 1], b), train)
                    shortcut = y if y.shape[-1] == widths[i + 1] else SymConv(
                        widths[i + 1], 1, self.compute, name=f"{b}_proj")(y)
                    y = nn.relu(h + shortcut.astype(h.dtype))
                    self.sow("intermediates", f"{b}_act", y)
                continue
            for name, width in zip(names, widths):
                y = conv(y, width, name)
                if unit == "bn":
                    y = BatchNorm(name=f"{name}_bn")(y, train)
                y = nn.relu(y)
                self.sow("intermediates", f"{name}_act", y)
        y = SymConv(cfg.transform_features, 3, self.compute, name="transform")(y)
        if cfg.transform_activation == "tanh":
            y = jnp.tanh(y)
        return l2_normalize(y.astype(jnp.promote_types(y.dtype, jnp.float32)), axis=-1)
