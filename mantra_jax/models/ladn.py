"""The local anomaly detection network (LADN) of the release.

featex (B, H, W, 256) -> outlierTrans (1x1, no bias, unit-norm filters) -> bnorm (no offset/scale; moving
statistics in eval mode, batch statistics in train mode; ``bnorm_statistics="image"``: each image's own
statistics in every mode, the PyTorch port's convention, whose checkpoints hold no moving statistics) -> floored global sigma -> anomaly feature
(default: time-axis absolute Z-scores over the windows then the global mean) -> ConvLSTM -> pred
(7x7 conv, sigmoid). Runs in float32 whatever the feature extractor's dtype.

Variables (names as in the release): params ``outlierTrans/kernel``, ``glbStd/min_std``,
``cLSTM/{kernel, recurrent_kernel, bias}``, ``pred/{kernel, bias}``; batch_stats
``bnorm/{moving_mean, moving_variance}``.

Stages (methods, each also applied on its own with ``apply(..., method=...)``, as exact tiled inference
does): ``adapt`` (``outlier_transform`` then ``normalize``) and ``detect`` (the rest, given whole-image
statistics of ``bnorm``); ``__call__`` is ``adapt`` then ``detect`` with the input's own statistics, and
the one method that declares the variables (Flax allows one ``compact`` method), so ``init`` goes through it.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mantra_jax.ops import batchnorm
from mantra_jax.ops.anomaly import AnomalyFeature, anomaly_reach, resolve_anomaly_feature
from mantra_jax.ops.box import global_mean, global_std
from mantra_jax.ops.constraints import non_negative_project, unit_norm_project
from mantra_jax.ops.conv import conv2d, conv2d_same
from mantra_jax.ops.convlstm import convlstm

RELEASE_WINDOWS = (7, 15, 31)  # the release's (Ptrain4's) window sizes: every model's default

SIGMA_FLOOR = 1e-6
BNORM_STATISTICS = ("moving", "image")  # what bnorm normalises by in inference (see the module docstring)


def _unit_norm_init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jnp.ndarray:
    return unit_norm_project(nn.initializers.glorot_uniform()(key, shape, dtype))


def _lstm_bias_init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jnp.ndarray:
    """Keras ``unit_forget_bias``: zeros with the forget gate (second quarter) at 1."""
    f = shape[0] // 4
    return jnp.zeros(shape, dtype).at[f:2 * f].set(1.0)


def _recurrent_init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jnp.ndarray:
    """Orthogonal over the flattened (k*k*F, 4F) matrix, as Keras does for recurrent kernels."""
    flat = (shape[0] * shape[1] * shape[2], shape[3])
    return nn.initializers.orthogonal()(key, flat, dtype).reshape(shape)


class AnomalyDetector(nn.Module):
    """LADN: (B, H, W, D) unit-norm features -> dict of named intermediates (see module docstring).

    Returns keys ``outlier_trans``, ``bnorm``, ``sigma``, ``features`` (the anomaly feature, (B,T,H,W,C')),
    any extra keys of the anomaly feature (``deviations`` for ``time_z``), ``clstm``, ``pred_logits`` and
    ``pred`` (B, H, W, 1) probabilities.
    """

    windows: tuple[int, ...] = RELEASE_WINDOWS
    adapted_features: int = 64
    lstm_features: int = 8
    lstm_kernel: int = 7
    pred_kernel: int = 7
    anomaly_feature: str | AnomalyFeature = "time_z"
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    min_std_init: float = 1e-5
    bnorm_statistics: str = "moving"

    SCOPE: ClassVar[str] = "LADN"  # its parameter-tree name inside ManTraNet
    OUTLIER_TRANS: ClassVar[str] = "outlierTrans"
    BNORM: ClassVar[str] = "bnorm"
    GLB_STD: ClassVar[str] = "glbStd"

    @nn.nowrap
    def own_constraints(self) -> dict[str, Callable[[jnp.ndarray], jnp.ndarray]]:
        """Its constrained weights (``mantra_jax.models.constraints``): unit-norm ``outlierTrans`` filters and a
        non-negative ``glbStd`` floor."""
        return {f"{self.OUTLIER_TRANS}/kernel": unit_norm_project, f"{self.GLB_STD}/min_std": non_negative_project}

    def feature_reach(self) -> int:
        """How far (pixels) the anomaly feature reads ``bnorm`` around a pixel (its declared reach)."""
        return anomaly_reach(self.anomaly_feature, self.windows)

    @nn.compact
    def __call__(self, featex: jnp.ndarray, train: bool = False,
                 global_stats: tuple[jnp.ndarray, jnp.ndarray] | None = None) -> dict[str, jnp.ndarray]:
        """Args: featex (B, H, W, D); train: batch statistics in bnorm; global_stats: optional (mean, std) of
        the bnorm output over the whole image, each (B, 1, 1, C), used instead of this input's own (exact
        tiled inference supplies them). The stages ``adapt`` then ``detect``; the one place the variables are
        declared (``init`` runs this)."""
        out = self.adapt(featex, train)
        b = out["bnorm"]
        mean, std = (global_mean(b), global_std(b)) if global_stats is None else global_stats
        out.update(self.detect(b, mean, std))
        return out

    @nn.nowrap
    def _declared(self, col: str, name: str, init: Callable[..., Any]) -> Any:
        """The variable ``name`` of ``col``: created by ``init`` (through ``__call__``), else read as bound, so
        that a stage also runs on its own (``apply(..., method=...)``, where Flax declares nothing)."""
        if self.is_initializing():
            return self.param(name, init) if col == "params" else self.variable(col, name, init).value
        value = self.get_variable(col, name)
        if value is None:
            raise ValueError(f"the LADN's variables lack {col}/{name}")
        # the shapes init would give (what self.param checks where Flax declares)
        want = jax.eval_shape(init, jax.random.key(0)) if col == "params" else jax.eval_shape(init)
        got = jax.tree.map(jnp.shape, value)
        if jax.tree.map(lambda a: a.shape, want) != got:
            raise ValueError(f"the LADN's {col}/{name} has shapes {got}, this model needs "
                             f"{jax.tree.map(lambda a: a.shape, want)}")
        return value

    def adapt(self, featex: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        """featex (B, H, W, D) -> ``outlier_trans`` and ``bnorm``, each (B, H, W, C): ``outlier_transform`` then
        ``normalize``."""
        x = self.outlier_transform(featex)
        return {"outlier_trans": x, "bnorm": self.normalize(x, train)}

    def outlier_transform(self, featex: jnp.ndarray) -> jnp.ndarray:
        """``outlierTrans``: featex (B, H, W, D) -> (B, H, W, C), a 1x1 convolution in float32."""
        if featex.ndim != 4:
            raise ValueError(f"LADN expects features of shape (B, H, W, D), got {featex.shape}")
        featex = featex.astype(jnp.float32)
        w = self._declared("params", self.OUTLIER_TRANS, lambda k: {
            "kernel": _unit_norm_init(k, (1, 1, featex.shape[-1], self.adapted_features))})
        return conv2d(featex, w["kernel"])

    def normalize(self, x: jnp.ndarray, train: bool = False,
                  moments: tuple[jnp.ndarray, jnp.ndarray] | None = None) -> jnp.ndarray:
        """``bnorm``: x (B, H, W, C) -> (B, H, W, C), normalised by ``bnorm_statistics``' moments (batch
        moments in train mode, updating the moving ones), or by ``moments`` = (mean, var), each (C,), when
        given (exact tiled inference of per-image normalisation supplies the whole image's)."""
        c = self.adapted_features
        if x.ndim != 4 or x.shape[-1] != c:
            raise ValueError(f"bnorm expects (B, H, W, {c}), got shape {x.shape}")
        moving = self._declared("batch_stats", self.BNORM, lambda: {
            "moving_mean": jnp.zeros((c,), jnp.float32), "moving_variance": jnp.ones((c,), jnp.float32)})
        if self.bnorm_statistics not in BNORM_STATISTICS:
            raise ValueError(f"bnorm_statistics must be one of {BNORM_STATISTICS}, got {self.bnorm_statistics!r}")
        if moments is not None:
            mean, var = moments
        elif self.bnorm_statistics == "image":  # (B, 1, 1, C) moments of each image; moving statistics unused
            mean = global_mean(x)
            var = global_mean(jnp.square(x - mean))
        elif train:
            mean, var = batchnorm.batch_moments(x)
            if not self.is_initializing():
                self.put_variable("batch_stats", self.BNORM, {
                    "moving_mean": batchnorm.ema_update(moving["moving_mean"], mean, self.bn_momentum),
                    "moving_variance": batchnorm.ema_update(moving["moving_variance"], var, self.bn_momentum),
                })
        else:
            mean, var = moving["moving_mean"], moving["moving_variance"]
        return batchnorm.normalize(x, mean, var, self.bn_epsilon)

    def detect(self, bnorm: jnp.ndarray, mean: jnp.ndarray, std: jnp.ndarray) -> dict[str, jnp.ndarray]:
        """The rest, from bnorm (B, H, W, C) and its whole-image (mean, std), each (B, 1, 1, C): ``sigma``,
        the anomaly feature's keys (``features`` (B, T, H, W, C')), ``clstm``, ``pred_logits``, ``pred``."""
        c = self.adapted_features
        if bnorm.ndim != 4 or bnorm.shape[-1] != c:
            raise ValueError(f"the LADN's detection expects bnorm of shape (B, H, W, {c}), got {bnorm.shape}")
        out: dict[str, jnp.ndarray] = {}
        min_std = self._declared("params", self.GLB_STD, lambda k: {
            "min_std": jnp.full((1, 1, 1, c), self.min_std_init)})["min_std"]
        mu, std = (jnp.asarray(s, jnp.float32) for s in (mean, std))
        sigma = jnp.maximum(std, SIGMA_FLOOR + min_std)
        out["sigma"] = sigma

        feats = dict(resolve_anomaly_feature(self.anomaly_feature)(bnorm, mu, sigma, self.windows))
        if "features" not in feats or feats["features"].ndim != 5:
            raise ValueError("an anomaly feature must return a dict with 'features' of shape (B, T, H, W, C)")
        out.update(feats)

        k, f = self.lstm_kernel, self.lstm_features
        cin = feats["features"].shape[-1]
        lstm = self._declared("params", "cLSTM", lambda key: {
            "kernel": nn.initializers.glorot_uniform()(jax.random.fold_in(key, 0), (k, k, cin, 4 * f)),
            "recurrent_kernel": _recurrent_init(jax.random.fold_in(key, 1), (k, k, f, 4 * f)),
            "bias": _lstm_bias_init(key, (4 * f,)),
        })
        h = convlstm(feats["features"], lstm["kernel"], lstm["recurrent_kernel"], lstm["bias"])
        out["clstm"] = h

        p = self.pred_kernel
        pred = self._declared("params", "pred", lambda key: {
            "kernel": nn.initializers.glorot_uniform()(key, (p, p, f, 1)), "bias": jnp.zeros((1,))})
        logits = conv2d_same(h, pred["kernel"], pred["bias"])
        out["pred_logits"] = logits
        out["pred"] = jax.nn.sigmoid(logits)
        return out


def ladn_reach(model: Any) -> int:
    """The anomaly feature's spatial reach for a model with ``windows`` and ``anomaly_feature`` fields (a
    ``ManTraNet`` or an ``AnomalyDetector``): what exact tiled inference needs (``ops.anomaly.anomaly_reach``)."""
    return anomaly_reach(model.anomaly_feature, model.windows)
