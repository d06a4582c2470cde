"""The paper's end-to-end training settings of the whole network (feature extractor + LADN), as data.

| setting | feature extractor (``Featex``)                | rest (``LADN``)  |
|---------|-----------------------------------------------|------------------|
| FR      | random init, Adam 1e-4                        | random, Adam 1e-4|
| HF      | loaded from an IMC checkpoint, frozen         | random, Adam 1e-4|
| HR      | loaded from an IMC checkpoint, Adam 5e-5      | random, Adam 1e-4|

("fully random", "half frozen", "half random".) Each setting is an entry of ``SETTINGS``: whether the
feature extractor is pretrained, and a learning rate per top-level parameter group (zero = frozen; groups
not named train at the run's learning rate). A run's config may add or override groups
(``learning_rates``). Frozen means zero updates and no gradient computed through the group (the train step
applies ``stop_gradient`` to the modules in ``frozen``), and no post-update projection of its weights.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
import optax

from mantra_jax.models.featex import FeatureExtractor
from mantra_jax.train.optimizer import PAPER_LEARNING_RATE, frozen_groups, per_group_adam

FEATEX = FeatureExtractor.SCOPE
PAPER_FEATEX_LEARNING_RATE = 5e-5


@dataclasses.dataclass(frozen=True)
class SettingSpec:
    """pretrained: Featex comes from an IMC checkpoint. learning_rates: group -> rate (0 = frozen)."""

    pretrained: bool
    learning_rates: Mapping[str, float]


SETTINGS: dict[str, SettingSpec] = {
    "FR": SettingSpec(pretrained=False, learning_rates={}),
    "HF": SettingSpec(pretrained=True, learning_rates={FEATEX: 0.0}),
    "HR": SettingSpec(pretrained=True, learning_rates={FEATEX: PAPER_FEATEX_LEARNING_RATE}),
}


@dataclasses.dataclass(frozen=True)
class EndToEndSetting:
    """name: FR / HF / HR. pretrained: Featex comes from an IMC checkpoint. frozen: top-level modules that
    get no updates. learning_rates: the per-group rates. tx: the optimiser."""

    name: str
    pretrained: bool
    frozen: tuple[str, ...]
    tx: optax.GradientTransformation
    learning_rates: Mapping[str, float] = dataclasses.field(default_factory=dict)


def end_to_end_setting(name: str, learning_rate: float = PAPER_LEARNING_RATE,
                       featex_learning_rate: float | None = None,
                       learning_rates: Mapping[str, float] | None = None) -> EndToEndSetting:
    """The optimiser and flags of setting ``name`` (FR, HF or HR; case-insensitive).

    ``featex_learning_rate`` replaces the setting's non-zero ``Featex`` rate (HR's 5e-5);
    ``learning_rates`` adds or overrides groups (``{"Featex": 0}`` freezes it).
    """
    key = str(name).upper()
    if key not in SETTINGS:
        raise ValueError(f"unknown end-to-end setting {name!r}; known: {tuple(SETTINGS)}")
    spec = SETTINGS[key]
    rates = {k: float(v) for k, v in spec.learning_rates.items()}
    if featex_learning_rate is not None and rates.get(FEATEX):
        rates[FEATEX] = float(featex_learning_rate)
    rates.update({str(k): float(v) for k, v in (learning_rates or {}).items()})
    return EndToEndSetting(key, spec.pretrained, frozen_groups(rates), per_group_adam(rates, learning_rate), rates)


def load_pretrained_featex(params: Mapping[str, Any], pretrained_params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with its ``Featex`` subtree replaced by ``pretrained_params["Featex"]`` (an IMC model's).

    Raises ValueError when the two feature extractors differ in structure or any shape.
    """
    import jax

    if FEATEX not in params or FEATEX not in pretrained_params:
        raise ValueError(f"both parameter trees need a {FEATEX!r} subtree (have {sorted(params)} and "
                         f"{sorted(pretrained_params)})")
    ours = dict(jax.tree_util.tree_leaves_with_path(params[FEATEX]))
    theirs = dict(jax.tree_util.tree_leaves_with_path(pretrained_params[FEATEX]))
    name = jax.tree_util.keystr
    if set(map(name, ours)) != set(map(name, theirs)):
        only_a = sorted(set(map(name, ours)) - set(map(name, theirs)))
        only_b = sorted(set(map(name, theirs)) - set(map(name, ours)))
        raise ValueError(f"pretrained feature extractor does not match the model's: model-only {only_a[:4]}, "
                         f"pretrained-only {only_b[:4]}")
    by_name = {name(k): v for k, v in theirs.items()}
    for k, v in ours.items():
        got = np.shape(by_name[name(k)])
        if got != np.shape(v):
            raise ValueError(f"pretrained feature extractor {FEATEX}{name(k)} has shape {got}, the model "
                             f"needs {np.shape(v)} (different variant?)")
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(params[FEATEX])
    values = [np.asarray(by_name[name(k)], dtype=np.asarray(v).dtype) for k, v in leaves_with_path]
    return {**params, FEATEX: jax.tree_util.tree_unflatten(treedef, values)}
