"""IMC training at any hierarchy level (paper Table 4): HL0 (the 7 families) ... HL5 (the 385 types).

A classifier of level HLi has one output per node of that level; the data's leaf labels (0..384) are
mapped to their HLi node inside the task (``level_task``), so the input pipeline is unchanged. It is
scored at its own level and at every coarser level HLj (j < i), a node's probability being the sum of
those of its HLi descendants, as ``mantra_jax.train.imc_metrics`` scores the 385-way classifier; the
underlined entries of Table 4 are these.

Our hierarchy has 7 / 28 / 50 / 98 / 194 / 385 nodes per level where the paper reports 7 / 25 / 49 / 96 /
185 / 385 (see ``mantra_jax.manipulations.hierarchy``); ``resolve_level`` accepts a level name (``HL2``) or
a class count of either list and returns the level with OUR count.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np

from mantra_jax.manipulations import hierarchy
from mantra_jax.train.tasks import Task, imc_task

LEVELS: tuple[str, ...] = hierarchy.PAPER_LEVEL_NAMES  # HL0 .. HL5
PAPER_CLASSES: dict[str, int] = dict(zip(LEVELS, (7, 25, 49, 96, 185, 385)))


def level_index(level: str | int) -> int:
    """0..5 for ``"HL0"``..``"HL5"`` (or the int itself); ValueError otherwise."""
    if isinstance(level, (int, np.integer)) and not isinstance(level, bool) and 0 <= level < len(LEVELS):
        return int(level)
    if isinstance(level, str) and level.upper() in LEVELS:
        return LEVELS.index(level.upper())
    raise ValueError(f"hierarchy level must be one of {', '.join(LEVELS)} (or 0..5), got {level!r}")


def level_classes(level: str | int) -> int:
    """Classes of a classifier at ``level`` (our hierarchy: 7, 28, 50, 98, 194, 385)."""
    return hierarchy.num_nodes(level_index(level) + 1)


def resolve_level(level: str | int | None = None, num_classes: int | None = None) -> tuple[str, int]:
    """``(level name, classes)`` from a level, a class count (ours or the paper's), or both (which must
    agree); neither gives HL5 (385)."""
    if level is None and num_classes is None:
        level = "HL5"
    if level is None:
        by_count = {level_classes(n): n for n in LEVELS} | {c: n for n, c in PAPER_CLASSES.items()}
        if num_classes not in by_count:
            raise ValueError(f"num_classes {num_classes} is no hierarchy level's; use one of "
                             f"{sorted(set(by_count))} or set the level (HL0..HL5)")
        level = by_count[num_classes]
    name = LEVELS[level_index(level)]
    n = level_classes(name)
    if num_classes is not None and num_classes not in (n, PAPER_CLASSES[name]):
        raise ValueError(f"num_classes {num_classes} does not match hierarchy level {name} ({n} classes here, "
                         f"{PAPER_CLASSES[name]} in the paper)")
    return name, n


def leaf_to_level(level: str | int) -> np.ndarray:
    """(385,) int32: the node at ``level`` of every leaf class."""
    return hierarchy.level_ids(level_index(level) + 1)


def level_matrices(level: str | int) -> dict[str, np.ndarray]:
    """``{"HL0": (n, 7), ..., "<level>": (n, n) identity}``: for each node of ``level`` (rows) its node at
    every level up to ``level`` (0/1, one 1 per row)."""
    i = level_index(level)
    fine = leaf_to_level(i)
    out = {}
    for j in range(i + 1):
        coarse = leaf_to_level(j)
        m = np.zeros((level_classes(i), level_classes(j)), np.float32)
        m[fine, coarse] = 1.0  # every leaf of a fine node has the same coarse node (a tree)
        out[LEVELS[j]] = m
    return out


def _relabel(batch: Mapping[str, Any], table: jnp.ndarray) -> dict[str, Any]:
    return {**batch, "label": table[batch["label"]]}


def level_task(level: str | int, hierarchy_weight: float = 0.0) -> Task:
    """``imc_task`` for a classifier at ``level``, fed leaf labels: they are mapped to the level's nodes
    in the loss and the validation sums (``imc_task``'s loss, accuracies at this and every coarser level)."""
    name, n = resolve_level(level)
    base = imc_task(levels=level_matrices(name), num_classes=n, hierarchy_weight=hierarchy_weight)
    if name == LEVELS[-1]:
        return base
    table = jnp.asarray(leaf_to_level(name))
    return Task(f"imc-{name}", base.batch_keys, lambda o, b: base.loss_fn(o, _relabel(b, table)),
                lambda o, b: base.eval_sums(o, _relabel(b, table)), base.summarize, base.headline)
