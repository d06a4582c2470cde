"""The released ManTra-Net variants and smaller research presets.

| name    | first layer (plain/SRM/Bayar) | transform | windows (+ global) |
|---------|-------------------------------|-----------|--------------------|
| ptrain0 | 32 (20/9/3)                   | tanh      | 7, 15, 31, 63      |
| ptrain1 | 32 (20/9/3)                   | none      | 7, 15, 31, 63      |
| ptrain2 | 16 (4/9/3)                    | none      | 7, 15, 31, 63      |
| ptrain3 | 16 (4/9/3)                    | none      | 7, 15, 31, 63      |
| ptrain4 | 16 (4/9/3) (the demo model)   | none      | 7, 15, 31          |
| tiny    | 16 (4/9/3), trunk 16..64 wide | none      | 7, 15, 31          |

``tiny`` is not a release model: a narrow trunk (about 1/16 of the compute) for tests and CPU smoke
training; its transform width is 64.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from mantra_jax.models.featex import RELEASE_TRUNK
from mantra_jax.models.mantranet import IMCClassifier, ManTraNet
from mantra_jax.ops.anomaly import AnomalyFeature


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    plain_filters: int
    transform_activation: str
    windows: tuple[int, ...]
    trunk: tuple[tuple[int, ...], ...] = RELEASE_TRUNK
    transform_features: int = 256


TINY_TRUNK: tuple[tuple[int, ...], ...] = ((16,), (32, 32), (32, 32, 32), (64, 64, 64), (64, 64))

VARIANTS: dict[str, Variant] = {
    "ptrain0": Variant("ptrain0", 20, "tanh", (7, 15, 31, 63)),
    "ptrain1": Variant("ptrain1", 20, "none", (7, 15, 31, 63)),
    "ptrain2": Variant("ptrain2", 4, "none", (7, 15, 31, 63)),
    "ptrain3": Variant("ptrain3", 4, "none", (7, 15, 31, 63)),
    "ptrain4": Variant("ptrain4", 4, "none", (7, 15, 31)),
    "tiny": Variant("tiny", 4, "none", (7, 15, 31), TINY_TRUNK, 64),
}


def get_variant(variant: str | Variant) -> Variant:
    if isinstance(variant, Variant):
        return variant
    try:
        return VARIANTS[variant.lower()]
    except KeyError:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}") from None


def make_mantranet(variant: str | Variant = "ptrain4", *, windows: tuple[int, ...] | None = None,
                   anomaly_feature: str | AnomalyFeature = "time_z", dtype: Any = jnp.float32,
                   kernel_grad: str = "auto", conv_algorithm: str = "auto") -> ManTraNet:
    """Builds a ManTraNet for a preset, optionally overriding the window list and anomaly feature.

    ``kernel_grad`` only changes how training computes the trunk's kernel gradients ("auto": per-tap
    matmuls on CPU for layers of 64 or more input channels, where they are faster; XLA's own elsewhere; see
    ``mantra_jax.ops.conv_grad``); the forward pass is the same. ``conv_algorithm``: how the 3 x 3 trunk
    convolutions are computed ("auto": Winograd F(4x4, 3x3) on CPU where faster; see
    ``mantra_jax.models.featex.FeatureExtractor``), equal up to float rounding."""
    v = get_variant(variant)
    return ManTraNet(plain_filters=v.plain_filters, trunk=v.trunk, transform_features=v.transform_features,
                     transform_activation=v.transform_activation,
                     windows=tuple(windows) if windows is not None else v.windows,
                     anomaly_feature=anomaly_feature, dtype=dtype, kernel_grad=kernel_grad,
                     conv_algorithm=conv_algorithm)


def make_imc_classifier(variant: str | Variant = "ptrain4", *, num_classes: int = 385,
                        dtype: Any = jnp.float32, kernel_grad: str = "auto",
                        fused_head_mean: bool = True) -> IMCClassifier:
    """Builds the IMC pre-training classifier sharing the preset's feature extractor (``kernel_grad``: see
    ``make_mantranet``; ``fused_head_mean``: see ``IMCClassifier``)."""
    v = get_variant(variant)
    return IMCClassifier(num_classes=num_classes, plain_filters=v.plain_filters, trunk=v.trunk,
                         transform_features=v.transform_features, transform_activation=v.transform_activation,
                         dtype=dtype, kernel_grad=kernel_grad, fused_head_mean=fused_head_mean)
