"""The manipulation hierarchy: 380 leaves from the official figure plus our 5 sharpening leaves = 385 classes.

``hierarchy_tree.TREE`` holds the hierarchy figure of the official ManTra-Net repository as a nested tree;
its leaves are numbered by walking it (``figure_leaves``), each with node ids at levels L1..L5, where
L1..L5 are node ids (1-based) at levels 1 (7 nodes: the families) to 5 (191 nodes); the leaves themselves are level 6.
The figure has 380 leaves and 7 / 27 / 49 / 96 / 191 / 380 nodes per level, whereas the paper reports 385
types with 7 / 25 / 49 / 96 / 185 / 385 (Table 4, hierarchy levels HL0..HL5 = our levels 1..6).

Our 5 additions: the paper lists sharpening among its manipulations but the figure has none, so we add
unsharp masking at 5 amounts as leaves 381..385 (class indices 380..384), under the contrast family (L1
node 7), in new nodes of their own at every finer level, grouped in pairs like the figure's subtrees
(``ADDITIONS_TREE``; the ids below are derived from it, numbering on after the figure's):

    name            L1  L2  L3  L4   L5
    Sharpen-A0.5     7  28  50  97  192
    Sharpen-A1.0     7  28  50  97  192
    Sharpen-A1.5     7  28  50  97  193
    Sharpen-A2.0     7  28  50  97  193
    Sharpen-A2.5     7  28  50  98  194

giving 7 / 28 / 50 / 98 / 194 / 385 nodes per level. Class index order: the csv's rows (leaf_id 1..380 ->
class 0..379), then the additions (380..384). Node ids are remapped to 0..n-1 per level in increasing order of
their csv id (which are contiguous, so remapped id = csv id - 1). Each fine node has exactly one parent at
every coarser level, so one 385-way classifier can be scored at any level by summing its probabilities over
the leaves of each node (`level_onehot`) or by mapping labels (`coarsen`).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

NUM_LEVELS = 6
LEVEL_NAMES: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5", "leaf")
PAPER_LEVEL_NAMES: tuple[str, ...] = ("HL0", "HL1", "HL2", "HL3", "HL4", "HL5")
# Names of the level-1 nodes (csv ids 1..7).
GROUP_NAMES: tuple[str, ...] = ("blur", "resize", "compression", "morphology", "noise", "quantization",
                                "contrast")


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One manipulation type in the hierarchy. `path` holds the csv node ids (1-based) at levels 1..5."""

    leaf_id: int
    name: str
    family: str
    parameter: str
    path: tuple[int, int, int, int, int]


# Our additions, as a subtree (levels 2..5, same shape as ``hierarchy_tree.TREE``) under an existing level-1
# node. Their node and leaf ids are derived by numbering on after the figure's (``_walk``), never typed.
ADDITIONS_TREE: dict[int, list] = {
    7: [[[[("Sharpen", ("A0.5", "A1.0")), ("Sharpen", ("A1.5", "A2.0"))], [("Sharpen", ("A2.5",))]]]],
}


def _walk(nodes: list, depth: int, counts: list[int], path: list[int], out: list[Leaf]) -> None:
    """Appends the leaves of ``nodes`` (a tree at level ``depth + 1``) to ``out``, numbering every new node
    on from ``counts`` (the last id used per level) in pre-order."""
    for node in nodes:
        counts[depth] += 1
        path[depth] = counts[depth]
        if depth < 4:
            _walk(node, depth + 1, counts, path, out)
            continue
        family, parameters = node
        for parameter in parameters:
            name = f"{family}-{parameter}" if parameter else family
            out.append(Leaf(len(out) + 1, name, family, parameter, tuple(path)))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=1)
def _built() -> tuple[tuple[Leaf, ...], tuple[Leaf, ...]]:
    from mantra_jax.manipulations.hierarchy_tree import TREE

    counts, path, out = [0] * 5, [0] * 5, []
    _walk(TREE, 0, counts, path, out)
    figure = len(out)
    for group, subtree in ADDITIONS_TREE.items():
        _walk(subtree, 1, counts, [group, 0, 0, 0, 0], out)
    return tuple(out[:figure]), tuple(out[figure:])


def figure_leaves() -> tuple[Leaf, ...]:
    """The 380 leaves of the official figure, in csv order."""
    return _built()[0]


def additions() -> tuple[Leaf, ...]:
    """Our 5 leaves (ids 381..385), with node ids derived from ``ADDITIONS_TREE``."""
    return _built()[1]


ADDITIONS: tuple[Leaf, ...] = additions()


@functools.lru_cache(maxsize=1)
def leaves() -> tuple[Leaf, ...]:
    """All 385 leaves in class-index order: the figure's 380, then ADDITIONS."""
    all_leaves = figure_leaves() + additions()
    _check_tree(all_leaves)
    return all_leaves


def _check_level(level: int) -> int:
    if not isinstance(level, (int, np.integer)) or isinstance(level, bool) or not 1 <= level <= NUM_LEVELS:
        raise ValueError(
            f"hierarchy level must be an integer in 1..{NUM_LEVELS} ({', '.join(LEVEL_NAMES)}), got {level!r}")
    return int(level)


def _raw_ids(all_leaves: tuple[Leaf, ...], level: int) -> np.ndarray:
    if level == NUM_LEVELS:
        return np.array([leaf.leaf_id for leaf in all_leaves], dtype=np.int64)
    return np.array([leaf.path[level - 1] for leaf in all_leaves], dtype=np.int64)


def _check_tree(all_leaves: tuple[Leaf, ...]) -> None:
    """Every node at a level has exactly one parent at the level above; raises ValueError otherwise."""
    names = [leaf.name for leaf in all_leaves]
    if len(set(names)) != len(names):
        raise ValueError("hierarchy leaf names are not unique")
    for level in range(2, NUM_LEVELS + 1):
        fine, coarse = _raw_ids(all_leaves, level), _raw_ids(all_leaves, level - 1)
        pairs = np.unique(np.stack([fine, coarse], axis=1), axis=0)
        if len(pairs) != len(np.unique(fine)):
            raise ValueError(
                f"hierarchy is not a tree: some level-{level} node has several level-{level - 1} parents")


@functools.lru_cache(maxsize=NUM_LEVELS)
def _level_arrays(level: int) -> tuple[np.ndarray, np.ndarray]:
    raw = _raw_ids(leaves(), level)
    csv_ids, remapped = np.unique(raw, return_inverse=True)
    remapped = remapped.astype(np.int32)
    csv_ids = csv_ids.astype(np.int32)
    remapped.setflags(write=False)
    csv_ids.setflags(write=False)
    return remapped, csv_ids


def level_ids(level: int) -> np.ndarray:
    """(385,) int32 (read-only): the node (0..num_nodes(level)-1) of every class at `level` in 1..6."""
    return _level_arrays(_check_level(level))[0]


def csv_ids(level: int) -> np.ndarray:
    """(num_nodes(level),) int32 (read-only): the csv node id of each remapped node (leaf_id at level 6)."""
    return _level_arrays(_check_level(level))[1]


def num_nodes(level: int) -> int:
    """Number of nodes at `level` in 1..6: 7, 28, 50, 98, 194, 385."""
    return len(csv_ids(level))


def num_classes() -> int:
    """Number of manipulation classes (leaves): 385."""
    return len(leaves())


def coarsen(labels: np.ndarray, level: int) -> np.ndarray:
    """Maps class indices (any shape, ints in 0..384) to their node ids at `level`."""
    labels = np.asarray(labels)
    in_range = np.issubdtype(labels.dtype, np.integer) and (
        labels.size == 0 or (labels.min() >= 0 and labels.max() < num_classes()))
    if not in_range:
        raise ValueError(f"coarsen: labels must be integers in [0, {num_classes() - 1}]")
    return level_ids(level)[labels]


def level_onehot(level: int) -> np.ndarray:
    """(385, num_nodes(level)) float32 0/1 matrix; probs @ level_onehot(level) gives per-node probabilities."""
    ids = level_ids(level)
    out = np.zeros((len(ids), num_nodes(level)), dtype=np.float32)
    out[np.arange(len(ids)), ids] = 1.0
    return out


def node_names(level: int) -> tuple[str, ...]:
    """A readable name per node at `level`: the group name at level 1, the leaf name at level 6, otherwise
    'Family:p1,p2,...' (or 'FamilyA+FamilyB' when a node mixes families)."""
    level = _check_level(level)
    all_leaves = leaves()
    ids = level_ids(level)
    names = []
    for node in range(num_nodes(level)):
        members = [all_leaves[i] for i in np.flatnonzero(ids == node)]
        if level == 1:
            names.append(GROUP_NAMES[members[0].path[0] - 1])
        elif level == NUM_LEVELS:
            names.append(members[0].name)
        else:
            families = sorted({m.family for m in members})
            if len(families) == 1:
                params = ",".join(m.parameter for m in members if m.parameter)
                names.append(f"{families[0]}:{params}" if params else families[0])
            else:
                names.append("+".join(families))
    return tuple(names)
