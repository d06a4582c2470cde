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

The paper's Section 3 backbones (``mantra_jax.models.backbones``) are variants too, named
``<backbone>[+<first layer>][/<divisor>]``: e.g. ``imc-vgg`` (Table 2's IMC-VGG), ``imc-vgg+srm`` (its
SRM-only first layer, Table 3), ``imc-vgg-wd+combined/4`` (Table 5's W&D with the combined first layer,
every width divided by 4 for a CPU run). Their default windows are ptrain4's.
"""

from __future__ import annotations

import dataclasses


from mantra_jax.models.compute import Compute
from mantra_jax.models.featex import FeatexConfig
from mantra_jax.models.ladn import RELEASE_WINDOWS
from mantra_jax.models.mantranet import IMCClassifier, ManTraNet
from mantra_jax.ops.anomaly import AnomalyFeature


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named model preset: the feature extractor's architecture and the detector's windows."""

    name: str
    featex: FeatexConfig
    windows: tuple[int, ...] = RELEASE_WINDOWS

    plain_filters = property(lambda self: self.featex.plain_filters)
    trunk = property(lambda self: self.featex.trunk)
    transform_features = property(lambda self: self.featex.transform_features)
    transform_activation = property(lambda self: self.featex.transform_activation)


TINY_TRUNK: tuple[tuple[int, ...], ...] = ((16,), (32, 32), (32, 32, 32), (64, 64, 64), (64, 64))

VARIANTS: dict[str, Variant] = {
    "ptrain0": Variant("ptrain0", FeatexConfig(20, transform_activation="tanh"), (7, 15, 31, 63)),
    "ptrain1": Variant("ptrain1", FeatexConfig(20), (7, 15, 31, 63)),
    "ptrain2": Variant("ptrain2", FeatexConfig(4), (7, 15, 31, 63)),
    "ptrain3": Variant("ptrain3", FeatexConfig(4), (7, 15, 31, 63)),
    "ptrain4": Variant("ptrain4", FeatexConfig(4), RELEASE_WINDOWS),
    "tiny": Variant("tiny", FeatexConfig(4, TINY_TRUNK, 64), RELEASE_WINDOWS),
}


def _study_variant(name: str) -> Variant:
    """``<backbone>[+<first layer>][/<divisor>]`` (see the module docstring); ValueError when malformed."""
    from mantra_jax.models.backbones import get_backbone

    rest, _, divisor = name.partition("/")
    backbone, _, first_layer = rest.partition("+")
    if divisor and not divisor.isdigit():
        raise ValueError(f"variant {name!r}: the width divisor after '/' must be a positive integer")
    featex = get_backbone(backbone).featex(first_layer or None, int(divisor or 1))
    return Variant(name, featex)


def get_variant(variant: str | Variant) -> Variant:
    """A release preset by name (case-insensitive), a study backbone (see the module docstring), or a
    ``Variant`` as given."""
    if isinstance(variant, Variant):
        return variant
    key = variant.lower()
    if key in VARIANTS:
        return VARIANTS[key]
    try:
        return _study_variant(key)
    except ValueError as e:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)} or a study backbone "
                         f"<backbone>[+<first layer>][/<divisor>] ({e})") from None


def make_mantranet(variant: str | Variant = "ptrain4", *, windows: tuple[int, ...] | None = None,
                   anomaly_feature: str | AnomalyFeature = "time_z", compute: Compute = Compute(),
                   bnorm_statistics: str = "moving") -> ManTraNet:
    """Builds a ManTraNet for a preset, optionally overriding the window list and anomaly feature;
    ``compute``: how it computes (``mantra_jax.models.compute.Compute``); ``bnorm_statistics``: ``"moving"``
    (the release) or ``"image"`` (the PyTorch port's per-image normalisation, ``models/ladn.py``)."""
    v = get_variant(variant)
    return ManTraNet(featex=v.featex, windows=tuple(windows) if windows is not None else v.windows,
                     anomaly_feature=anomaly_feature, compute=compute, bnorm_statistics=bnorm_statistics)


def make_imc_classifier(variant: str | Variant = "ptrain4", *, num_classes: int, compute: Compute = Compute(),
                        fused_head_mean: bool = True) -> IMCClassifier:
    """Builds the IMC pre-training classifier sharing the preset's feature extractor (``num_classes``: the
    catalogue's size for IMC-385, ``mantra_jax.models.config.catalogue_size``; ``compute``: see
    ``make_mantranet``; ``fused_head_mean``: see ``IMCClassifier``)."""
    v = get_variant(variant)
    return IMCClassifier(num_classes=num_classes, featex=v.featex, compute=compute,
                         fused_head_mean=fused_head_mean)
