"""The paper's end-to-end training settings of the whole network (feature extractor + LADN).

| setting | feature extractor (``Featex``)                | rest (``LADN``)  |
|---------|-----------------------------------------------|------------------|
| FR      | random init, Adam 1e-4                        | random, Adam 1e-4|
| HF      | loaded from an IMC checkpoint, frozen         | random, Adam 1e-4|
| HR      | loaded from an IMC checkpoint, Adam 5e-5      | random, Adam 1e-4|

("fully random", "half frozen", "half random".) Frozen means zero updates and no gradient computed
through the feature extractor (the train step applies ``stop_gradient`` to the modules in ``frozen``), and
no post-update projection of its Bayar kernel.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
import optax

from mantra_jax.train.optimizer import PAPER_LEARNING_RATE, adam, by_module

SETTINGS = ("FR", "HF", "HR")
FEATEX = "Featex"
PAPER_FEATEX_LEARNING_RATE = 5e-5


@dataclasses.dataclass(frozen=True)
class EndToEndSetting:
    """name: FR / HF / HR. pretrained: Featex comes from an IMC checkpoint. frozen: top-level modules that
    get no updates. tx: the optimiser."""

    name: str
    pretrained: bool
    frozen: tuple[str, ...]
    tx: optax.GradientTransformation


def end_to_end_setting(name: str, learning_rate: float = PAPER_LEARNING_RATE,
                       featex_learning_rate: float = PAPER_FEATEX_LEARNING_RATE) -> EndToEndSetting:
    """The optimiser and flags of setting ``name`` (FR, HF or HR; case-insensitive)."""
    key = str(name).upper()
    if key == "FR":
        return EndToEndSetting("FR", False, (), adam(learning_rate))
    if key == "HF":
        return EndToEndSetting("HF", True, (FEATEX,), by_module({FEATEX: None}, adam(learning_rate)))
    if key == "HR":
        return EndToEndSetting("HR", True, (), by_module({FEATEX: adam(featex_learning_rate)}, adam(learning_rate)))
    raise ValueError(f"unknown end-to-end setting {name!r}; known: {SETTINGS}")


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
