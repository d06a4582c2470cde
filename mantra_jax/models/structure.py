"""The network's convolutions described once: the one walk of a model's architecture that the FLOP counter
(``mantra_jax.train.flops``), the tiled halo (``mantra_jax.infer.halo``), the receptive field and the
benchmark's layer list all read.

A ``Layer`` is one convolution: its parameter scope (``b1c1``, ``b2c1_proj``, ``cLSTM/kernel`` ...), its
kernel side, its input and output channels, which part of the network it is, whether it lies on the
longest path (a residual unit's 1x1 projection shortcut does not) and how many times it runs per pixel
(the ConvLSTM's convolutions once per time step). The models expose their lists as ``layers()``
(``FeatexConfig``, ``ManTraNet``, ``IMCClassifier``), their scopes prefixed by the submodule's name
(``Featex/b1c1``, ``LADN/pred``).

| part          | layers                                                                      |
|---------------|-----------------------------------------------------------------------------|
| ``first``     | ``b1c1``: the first layer (``mantra_jax.models.first_layer``)                |
| ``trunk``     | ``b{i}c{j}``: the trunk's 3x3 convolutions, every unit kind                  |
| ``shortcut``  | ``b{i}c{j}_proj``: a residual unit's 1x1 projection (off the longest path)   |
| ``transform`` | ``transform``: the feature extractor's last 3x3                              |
| ``ladn``      | ``outlierTrans`` 1x1, ``cLSTM/kernel`` and ``cLSTM/recurrent_kernel`` (per  |
|               | time step), ``pred``                                                         |
| ``head``      | ``IMCHead``: the IMC classifier's 3x3 decision convolution                   |
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from mantra_jax.models.first_layer import FirstLayer, first_layer_features, first_layer_kernel

PARTS: tuple[str, ...] = ("first", "trunk", "shortcut", "transform", "ladn", "head")


@dataclasses.dataclass(frozen=True)
class Layer:
    """One convolution: ``kernel`` x ``kernel`` from ``in_ch`` to ``out_ch`` channels under the parameter
    scope ``name``, in ``part`` (one of ``PARTS``), run ``steps`` times per pixel."""

    name: str
    kernel: int
    in_ch: int
    out_ch: int
    part: str
    on_longest_path: bool = True
    steps: int = 1

    @property
    def flops_per_pixel(self) -> int:
        """Forward FLOPs per output pixel: ``2 k^2 I O`` per run (bias and activation left out)."""
        return 2 * self.kernel * self.kernel * self.in_ch * self.out_ch * self.steps

    @property
    def reach(self) -> int:
        """How far (pixels) an output pixel reads the layer's input on each side, ``kernel // 2``."""
        return self.kernel // 2

    def under(self, prefix: str) -> "Layer":
        """This layer mounted in a submodule named ``prefix``."""
        return dataclasses.replace(self, name=f"{prefix}/{self.name}")


def trunk_blocks(cfg: Any) -> tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...]:
    """(unit, parameter scopes, widths) per trunk block of a ``FeatexConfig``: scopes ``b{i}c{j}``, block 1
    from ``c2`` (``b1c1`` is the first layer)."""
    out = []
    for block, (widths, unit) in enumerate(zip(cfg.trunk, cfg.block_units), start=1):
        first = 2 if block == 1 else 1
        out.append((unit, tuple(f"b{block}c{j}" for j in range(first, first + len(widths))), tuple(widths)))
    return tuple(out)


def featex_layers(cfg: Any) -> tuple[Layer, ...]:
    """The convolutions of a ``mantra_jax.models.featex.FeatexConfig`` (a layer above this one) in order: the first layer, the trunk by unit kind (``conv`` /
    ``bn``: one 3x3 per width; ``residual``: pairs of 3x3s, with a 1x1 projection shortcut where the width
    changes) and the transform. The module that runs them: ``mantra_jax.models.featex.FeatureExtractor``."""
    c = first_layer_features(cfg.first_layer, cfg.plain_filters)
    out = [Layer(FirstLayer.SCOPE, first_layer_kernel(cfg.first_layer), 3, c, "first")]
    for unit, names, widths in trunk_blocks(cfg):
        if unit == "residual":
            for i in range(0, len(widths), 2):
                a, b = widths[i], widths[i + 1]
                out += [Layer(names[i], 3, c, a, "trunk"), Layer(names[i + 1], 3, a, b, "trunk")]
                if c != b:
                    out.append(Layer(f"{names[i + 1]}_proj", 1, c, b, "shortcut", on_longest_path=False))
                c = b
            continue
        for name, width in zip(names, widths):
            out.append(Layer(name, 3, c, width, "trunk"))
            c = width
    out.append(Layer("transform", 3, c, cfg.transform_features, "transform"))
    return tuple(out)


def ladn_layers(detector: Any, in_features: int, steps: int) -> tuple[Layer, ...]:
    """The LADN's convolutions, read from an ``AnomalyDetector``'s fields, for ``in_features`` input
    channels and ``steps`` anomaly-feature time steps (the ConvLSTM's cell equation, both convolutions, per
    step; the implementation skips step 0's recurrent convolution of the zero state)."""
    c, f = detector.adapted_features, detector.lstm_features
    return (Layer(detector.OUTLIER_TRANS, 1, in_features, c, "ladn"),
            Layer("cLSTM/kernel", detector.lstm_kernel, c, 4 * f, "ladn", steps=steps),
            Layer("cLSTM/recurrent_kernel", detector.lstm_kernel, f, 4 * f, "ladn", steps=steps),
            Layer("pred", detector.pred_kernel, f, 1, "ladn"))


def radius(layers: Iterable[Layer]) -> int:
    """Receptive radius of a stack of symmetric / 'same' convolutions: the reach summed over the longest
    path."""
    return sum(layer.reach for layer in layers if layer.on_longest_path)


def forward_flops_per_pixel(layers: Iterable[Layer]) -> int:
    """Forward FLOPs per pixel of ``layers`` (``Layer.flops_per_pixel`` summed)."""
    return sum(layer.flops_per_pixel for layer in layers)


def in_parts(layers: Iterable[Layer], parts: Iterable[str]) -> tuple[Layer, ...]:
    """The layers of ``layers`` in any of ``parts``."""
    parts = tuple(parts)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}; known: {', '.join(PARTS)}")
    return tuple(layer for layer in layers if layer.part in parts)
