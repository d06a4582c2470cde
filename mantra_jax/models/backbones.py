"""The paper's Section 3 backbones (Tables 2 and 5) as block descriptions, built into ``FeatexConfig``s.

A backbone is described as the paper's tables draw it: a first block of ``first`` = (filters, convs)
whose first conv is the first layer (``mantra_jax.models.first_layer``), middle blocks of (filters, m)
repeating one unit m times (``unit``: "conv" = VGG, "residual" = ResNet with projection shortcuts, "bn" =
DnCNN), a last block of plain conv + ReLU layers (``last_relu``, possibly none) and the L2-normalised
``last`` conv; the IMC decision block (a 3x3 conv to the classes) sits on top. Nothing downsamples.

| name              | table | first  | middle (filters x m)                  | last block         |
|-------------------|-------|--------|---------------------------------------|--------------------|
| ``imc-vgg``       | 2, 5  | 16 x 2 | 32x2, 64x3, 128x2                      | 128 L2             |
| ``imc-resnet``    | 2     | 16 x 1 | residual 16x1, 32x1, 64x1, 128x1       | 128 L2             |
| ``imc-dncnn``     | 2     | 72 x 1 | bn 72 x 1, nine blocks                 | 128 L2             |
| ``imc-vgg-wider`` | 5     | 32 x 2 | 64x2, 128x3, 256x2                     | 256 L2             |
| ``imc-vgg-deeper``| 5     | 16 x 2 | 32x2, 64x3, 128x3                      | 256x2 ReLU, 256 L2 |
| ``imc-vgg-wd``    | 5     | 32 x 2 | 64x2, 128x3, 256x3                     | 256x2 ReLU, 256 L2 |

The paper writes the VGG widths as "16k@(3,3)" with k the block index; its parameter counts and the
release's W&D trunk (32, 64, 128, 256, 256) show the width doubling from block to block (16 * 2^(k-1)),
which is what the table above uses; likewise "16(k-1)" for the ResNet units. The tables draw the first
block as plain 3x3 convolutions, so the backbones' default first layer is ``plain3`` (Table 2, and the
receptive fields 23 / 29 of Table 5); Tables 3-5 then swap in the combined first layer, which is 5x5 and
widens the receptive field by 2 (``with_first_layer``).

``PAPER_PARAMS`` / ``PAPER_RECEPTIVE_FIELD`` hold the tables' figures; ``imc_parameter_count`` counts an
IMC classifier's parameters from ``jax.eval_shape`` of its initialisation (nothing is computed) and
``imc_receptive_field`` adds the decision block's 3x3 to the feature extractor's; ``imc_architecture``
gathers the static rows of the tables.
"""

from __future__ import annotations

import dataclasses

from mantra_jax.models.featex import FeatexConfig
from mantra_jax.models.first_layer import first_layer_features, first_layer_kernel, plain_filters_for
from mantra_jax.models.mantranet import DECISION_KERNEL


@dataclasses.dataclass(frozen=True)
class Backbone:
    """A block description (see the module docstring). ``divisor`` scales every width down (ceil) for
    cheap runs of the same structure; 1 is the paper's."""

    name: str
    unit: str
    first: tuple[int, int]
    middle: tuple[tuple[int, int], ...]
    last: int
    last_relu: tuple[int, int] = (0, 0)
    first_layer: str = "plain3"
    transform_activation: str = "none"

    def featex(self, first_layer: str | None = None, divisor: int = 1) -> FeatexConfig:
        """The ``FeatexConfig`` of this backbone (with ``first_layer`` instead of its own, if given)."""
        if divisor < 1:
            raise ValueError(f"width divisor must be >= 1, got {divisor}")

        def w(n: int) -> int:
            return -(-n // divisor)

        first_layer = first_layer or self.first_layer
        first_filters, first_convs = self.first
        trunk = [tuple([w(first_filters)] * (first_convs - 1))]
        units = ["conv"]
        per_unit = 2 if self.unit == "residual" else 1
        for filters, m in self.middle:
            trunk.append(tuple([w(filters)] * (per_unit * m)))
            units.append(self.unit)
        filters, repeats = self.last_relu
        if repeats:
            trunk.append(tuple([w(filters)] * repeats))
            units.append("conv")
        # the combined layer's 12 fixed channels are not divided, its plain share is
        plain = plain_filters_for(first_layer, max(w(first_filters), 13) if first_layer == "combined"
                                  else w(first_filters))
        return FeatexConfig(plain_filters=plain, trunk=tuple(trunk), transform_features=w(self.last),
                            transform_activation=self.transform_activation, first_layer=first_layer,
                            units=tuple(units))


BACKBONES: dict[str, Backbone] = {b.name: b for b in (
    Backbone("imc-vgg", "conv", (16, 2), ((32, 2), (64, 3), (128, 2)), 128),
    Backbone("imc-resnet", "residual", (16, 1), ((16, 1), (32, 1), (64, 1), (128, 1)), 128),
    Backbone("imc-dncnn", "bn", (72, 1), ((72, 1),) * 9, 128),
    Backbone("imc-vgg-wider", "conv", (32, 2), ((64, 2), (128, 3), (256, 2)), 256),
    Backbone("imc-vgg-deeper", "conv", (16, 2), ((32, 2), (64, 3), (128, 3)), 256, (256, 2)),
    Backbone("imc-vgg-wd", "conv", (32, 2), ((64, 2), (128, 3), (256, 3)), 256, (256, 2)),
)}

# Table 2's #Param (IMC-7 classifiers) and Table 5's receptive fields (IMC-385), as printed.
PAPER_PARAMS: dict[str, int] = {"imc-vgg": 487_000, "imc-resnet": 465_000, "imc-dncnn": 482_000}
PAPER_RECEPTIVE_FIELD: dict[str, int] = {"imc-vgg": 23, "imc-vgg-wider": 23, "imc-vgg-deeper": 29,
                                         "imc-vgg-wd": 29}
# Table 2's #Conv2D (the ResNet's counts its three projection shortcuts).
PAPER_CONVS: dict[str, int] = {"imc-vgg": 11, "imc-resnet": 14, "imc-dncnn": 12, "imc-vgg-wider": 11,
                               "imc-vgg-deeper": 14, "imc-vgg-wd": 14}


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}") from None


def imc_receptive_field(featex: FeatexConfig) -> int:
    """Receptive field of an IMC classifier's logits map: the feature extractor's plus the 3x3 decision."""
    return featex.receptive_field + DECISION_KERNEL - 1


def num_conv2d(featex: FeatexConfig) -> int:
    """Conv2D layers of the IMC classifier as Table 2 counts them: the longest path, the decision block and
    the projection shortcuts (every layer of ``featex.layers()``, plus the decision block)."""
    return len(featex.layers()) + 1


def imc_parameter_count(featex: FeatexConfig, num_classes: int) -> dict[str, int]:
    """``{"params": trainable scalars, "batch_stats": moving statistics}`` of an ``IMCClassifier`` with this
    feature extractor, from ``jax.eval_shape`` of its initialisation (no compilation, no computation)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mantra_jax.models.mantranet import IMCClassifier

    model = IMCClassifier(num_classes=num_classes, featex=featex)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3), jnp.float32)))
    return {name: int(sum(np.prod(a.shape) for a in jax.tree.leaves(shapes.get(name, {}))))
            for name in ("params", "batch_stats")}


def imc_architecture(featex: FeatexConfig, num_classes: int) -> dict[str, int | str]:
    """The static rows of Tables 2-5 for an IMC classifier with this feature extractor: ``convs``
    (``num_conv2d``), ``params`` (trainable scalars), ``filters`` / ``kernel`` of the first layer and
    ``receptive_field`` (of the logits map)."""
    return {"convs": num_conv2d(featex), "params": imc_parameter_count(featex, num_classes)["params"],
            "filters": first_layer_features(featex.first_layer, featex.plain_filters),
            "kernel": first_layer_kernel(featex.first_layer), "receptive_field": imc_receptive_field(featex)}
