"""The whole ManTra-Net and the IMC pre-training classifier.

``ManTraNet.__call__(x, train=False)`` maps (B, H, W, 3) float images in [-1, 1] to a dict of named
intermediates. Mapping to the release's layer names (and the reference files' keys):

| key             | release name      | shape               |
|-----------------|-------------------|---------------------|
| ``featex``      | Featex            | (B, H, W, 256)      |
| ``outlier_trans``| outlierTrans     | (B, H, W, 64)       |
| ``bnorm``       | bnorm             | (B, H, W, 64)       |
| ``sigma``       | glbStd            | (B, 1, 1, 64)       |
| ``deviations``  | nestedAvgFeatex   | (B, T, H, W, 64)    |
| ``features``    | divStd            | (B, T, H, W, 64)    |
| ``clstm``       | cLSTM             | (B, H, W, 8)        |
| ``pred_logits`` | (pre-sigmoid pred)| (B, H, W, 1)        |
| ``pred``        | pred              | (B, H, W, 1)        |

Variables: ``params = {"Featex": ..., "LADN": ...}``, ``batch_stats = {"LADN": {"bnorm": ...}}``.

Public stages, for ``model.apply(variables, ..., method=ManTraNet.<stage>)`` (exact tiled inference runs
them tile by tile): ``adapt(x)`` -> ``featex``, ``outlier_trans``, ``bnorm``; ``detect_from_adapted(bnorm,
mean, std)`` -> the rest, from given whole-image statistics of ``bnorm``; composed, they equal ``__call__``
bit for bit. ``outlier_transform(x)`` (``adapt`` before ``bnorm``) and ``normalize(outlier_trans, moments)``
split ``adapt`` for per-image normalisation.

Per-layer trunk activations (after ReLU) are sown as ``<layer>_act`` into the ``intermediates`` collection:
``out, state = model.apply(v, x, mutable=["intermediates"])``, then
``state["intermediates"]["Featex"]["b3c2_act"][0]``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp

from mantra_jax.models.compute import Compute
from mantra_jax.models.featex import FeatexConfig, FeatureExtractor
from mantra_jax.models.ladn import RELEASE_WINDOWS, AnomalyDetector
from mantra_jax.models.structure import Layer, ladn_layers
from mantra_jax.ops.anomaly import AnomalyFeature
from mantra_jax.ops.conv import conv2d_symmetric, conv2d_symmetric_mean

DECISION_KERNEL = 3  # the IMC classifier's decision block: a 3x3 convolution to the classes


def _check_images(x: jnp.ndarray) -> None:
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected images of shape (B, H, W, 3), got {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"expected float images in [-1, 1] (see mantra_jax.preprocess), got dtype {x.dtype}")


def adapted_channels(variables: Any) -> int:
    """Channels C of a ManTraNet's adapted features (``outlierTrans``' outputs), read from its variables."""
    return int(variables["params"][AnomalyDetector.SCOPE][AnomalyDetector.OUTLIER_TRANS]["kernel"].shape[-1])


class _ComposesFeatex:
    """The feature extractor's architecture fields, read through ``featex`` (a ``FeatexConfig``)."""

    plain_filters = property(lambda self: self.featex.plain_filters)
    trunk = property(lambda self: self.featex.trunk)
    transform_features = property(lambda self: self.featex.transform_features)
    transform_activation = property(lambda self: self.featex.transform_activation)
    first_layer = property(lambda self: self.featex.first_layer)


class ManTraNet(_ComposesFeatex, nn.Module):
    """Feature extractor + local anomaly detection network. See the module docstring for outputs.

    ``featex``: the feature extractor's architecture; ``compute``: how it computes
    (``mantra_jax.models.compute.Compute``); ``bnorm_statistics``: ``"moving"`` (the release) or ``"image"``
    (each image normalised by its own statistics, as the PyTorch port does; see ``models/ladn.py``)."""

    featex: FeatexConfig = FeatexConfig()
    windows: tuple[int, ...] = RELEASE_WINDOWS
    anomaly_feature: str | AnomalyFeature = "time_z"
    compute: Compute = Compute()
    bnorm_statistics: str = "moving"

    def setup(self) -> None:
        """The submodules, under the release's names (``FeatureExtractor.SCOPE``, ``AnomalyDetector.SCOPE``:
        the attribute names here)."""
        self.Featex = self.featex.module(compute=self.compute)
        self.LADN = AnomalyDetector(**self._detector_fields())

    @nn.nowrap
    def _detector_fields(self) -> dict:
        return dict(windows=tuple(self.windows), anomaly_feature=self.anomaly_feature,
                    bnorm_statistics=self.bnorm_statistics)

    @nn.nowrap
    def detector(self) -> AnomalyDetector:
        """An unbound copy of the ``LADN`` submodule (its fields: kernels, widths, windows), for reading its
        architecture outside ``apply``."""
        return AnomalyDetector(**self._detector_fields(), parent=None)

    @nn.nowrap
    def submodules(self) -> tuple[tuple[str, nn.Module], ...]:
        """(scope, unbound module) of the feature extractor and the LADN (``mantra_jax.models.constraints``
        walks them)."""
        return ((FeatureExtractor.SCOPE, FeatureExtractor(self.featex, self.compute, parent=None)),
                (AnomalyDetector.SCOPE, self.detector()))

    @nn.nowrap
    def layers(self, steps: int | None = None) -> tuple[Layer, ...]:
        """The convolutions (``mantra_jax.models.structure``): ``Featex/...`` then ``LADN/...``, the ConvLSTM's
        run ``steps`` times (default ``len(windows) + 1``: the ``time_z`` feature's windows and global mean)."""
        steps = len(self.windows) + 1 if steps is None else steps
        return (tuple(layer.under(FeatureExtractor.SCOPE) for layer in self.featex.layers())
                + tuple(layer.under(AnomalyDetector.SCOPE) for layer in ladn_layers(
                    self.detector(), self.featex.transform_features, steps)))

    def __call__(self, x: jnp.ndarray, train: bool = False,
                 global_stats: tuple[jnp.ndarray, jnp.ndarray] | None = None) -> dict[str, jnp.ndarray]:
        """x: (B, H, W, 3) in [-1, 1]. global_stats: optional whole-image (mean, std) of ``bnorm``, each
        (B, 1, 1, C). The feature extractor, then the LADN (whose ``__call__`` is ``adapt`` then ``detect``):
        ``adapt`` then ``detect_from_adapted``, bit for bit."""
        featex = self._featex(x, train)
        return {"featex": featex, **self.LADN(featex, train=train, global_stats=global_stats)}

    @nn.nowrap
    def _featex(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        """x (B, H, W, 3) in [-1, 1], checked -> featex (B, H, W, D)."""
        _check_images(x)
        return self.Featex(x, train=train)

    def outlier_transform(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        """Stage: x (B, H, W, 3) -> ``featex`` (B, H, W, D) and ``outlier_trans`` (B, H, W, C), before any
        normalisation (what exact tiled inference stores under per-image normalisation)."""
        featex = self._featex(x, train)
        return {"featex": featex, "outlier_trans": self.LADN.outlier_transform(featex)}

    def normalize(self, outlier_trans: jnp.ndarray,
                  moments: tuple[jnp.ndarray, jnp.ndarray] | None = None) -> jnp.ndarray:
        """Stage: ``bnorm`` (B, H, W, C) of ``outlier_trans`` (B, H, W, C) in inference, by ``moments`` =
        (mean, var), each (C,), when given (else by ``bnorm_statistics``')."""
        return self.LADN.normalize(outlier_trans, moments=moments)

    def adapt(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        """Stage: x (B, H, W, 3) -> ``featex``, ``outlier_trans`` and ``bnorm`` (the adapted features,
        (B, H, W, C)), as ``__call__`` computes them."""
        featex = self._featex(x, train)
        return {"featex": featex, **self.LADN.adapt(featex, train)}

    def detect_from_adapted(self, bnorm: jnp.ndarray, mean: jnp.ndarray, std: jnp.ndarray) -> dict[str, jnp.ndarray]:
        """Stage: the rest of the LADN on ``bnorm`` (B, H, W, C) with given whole-image statistics ``mean``,
        ``std`` (B, 1, 1, C): ``sigma``, ``features`` (and the anomaly feature's other keys), ``clstm``,
        ``pred_logits``, ``pred`` (B, H, W, 1)."""
        return self.LADN.detect(bnorm, mean, std)


class IMCClassifier(_ComposesFeatex, nn.Module):
    """Feature extractor + decision block for IMC pre-training: 3x3 conv to classes, global average pool.

    Returns ``featex`` (B, H, W, D), ``logits_map`` (B, H, W, N) and ``logits`` (B, N).
    Variables: ``params = {"Featex": ..., "IMCHead": {"kernel", "bias"}}``. ``fused_head_mean``: compute
    ``logits`` with ``conv2d_symmetric_mean`` (same values, about a fifth fewer training FLOPs for Ptrain4)
    rather than as the mean of ``logits_map``. ``featex``, ``compute``: see ``ManTraNet``. ``num_classes``
    has no default here: the IMC task's is the catalogue's size (``mantra_jax.models.config``).
    """

    num_classes: int
    featex: FeatexConfig = FeatexConfig()
    compute: Compute = Compute()
    fused_head_mean: bool = True

    HEAD: ClassVar[str] = "IMCHead"  # the decision block's parameter-tree name

    @nn.nowrap
    def submodules(self) -> tuple[tuple[str, nn.Module], ...]:
        """(scope, unbound module) of the feature extractor (``mantra_jax.models.constraints`` walks it)."""
        return ((FeatureExtractor.SCOPE, FeatureExtractor(self.featex, self.compute, parent=None)),)

    @nn.nowrap
    def layers(self) -> tuple[Layer, ...]:
        """The convolutions (``mantra_jax.models.structure``): ``Featex/...`` then the ``IMCHead``."""
        return (tuple(layer.under(FeatureExtractor.SCOPE) for layer in self.featex.layers())
                + (Layer(self.HEAD, DECISION_KERNEL, self.featex.transform_features, self.num_classes, "head"),))

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        _check_images(x)
        featex = self.featex.module(compute=self.compute)(x, train=train)
        head = self.param(self.HEAD, lambda k: {
            "kernel": nn.initializers.glorot_uniform()(k, (DECISION_KERNEL, DECISION_KERNEL, featex.shape[-1],
                                                          self.num_classes)),
            "bias": jnp.zeros((self.num_classes,))})
        kernel_grad = self.compute.layer_rule().kernel_grad(featex.shape[-1], math.prod(featex.shape[:3]))
        logits_map = conv2d_symmetric(featex, head["kernel"], head["bias"], kernel_grad=kernel_grad)  # direct
        if self.fused_head_mean:
            # the spatial mean of logits_map computed without it; under jit XLA then drops logits_map when
            # only the logits are used, as in training
            logits = conv2d_symmetric_mean(featex, head["kernel"], head["bias"])
        else:
            logits = jnp.mean(logits_map, axis=(1, 2))
        return {"featex": featex, "logits_map": logits_map, "logits": logits}
