"""IMC validation accuracy at every hierarchy level (paper Tables 4-5: top-1/3/5/10, levels HL0..HL5).

One 385-way classifier is scored at a coarser level by the probability of each node, defined as the SUM
of the softmax probabilities of its leaves (the node's marginal probability under the classifier; the
paper's "an IMC trained on hierarchy i can be used to also predict labels of hierarchy j"). A sample is a
top-k hit at a level when its true node is among the k nodes of highest summed probability, i.e. when
fewer than k nodes have a strictly higher probability than the true node (ties resolve in the sample's
favour; with float probabilities they practically never occur). When k >= the number of nodes every
sample is a hit (e.g. top-10 at HL0, which has 7 nodes). At the leaf level this is the usual top-k.

The per-batch function returns integer hit counts so that a validation set of any size is summed exactly
on the host; ``summarize_imc`` turns the sums into accuracies.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

TOP_K: tuple[int, ...] = (1, 3, 5, 10)


def check_levels(levels: Mapping[str, np.ndarray], num_classes: int) -> dict[str, np.ndarray]:
    """Validates ``{level name: (num_classes, num_nodes) 0/1 matrix}``: every class in exactly one node."""
    out = {}
    for name, m in levels.items():
        m = np.asarray(m, np.float32)
        if m.ndim != 2 or m.shape[0] != num_classes:
            raise ValueError(f"level {name!r}: expected a ({num_classes}, nodes) matrix, got shape {m.shape}")
        if not (np.isin(m, (0.0, 1.0)).all() and (m.sum(axis=1) == 1).all()):
            raise ValueError(f"level {name!r}: every class (row) must belong to exactly one node (a single 1)")
        out[str(name)] = m
    return out


def hierarchy_levels() -> dict[str, np.ndarray]:
    """The project's 385-class hierarchy as ``{"HL0": (385, 7), ..., "HL5": (385, 385)}`` (paper names)."""
    from mantra_jax.manipulations import hierarchy

    return {name: hierarchy.level_onehot(level)
            for level, name in enumerate(hierarchy.PAPER_LEVEL_NAMES, start=1)}


def imc_batch_sums(logits: jnp.ndarray, labels: jnp.ndarray, levels: Mapping[str, np.ndarray],
                   top_k: Sequence[int] = TOP_K) -> dict[str, jnp.ndarray]:
    """Hit counts ``{"<level>/top<k>": int32 ()}`` and ``"count"`` for logits (B, C) and int labels (B,)."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (B, C) and labels (B,), got {logits.shape} and {labels.shape}")
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    out: dict[str, jnp.ndarray] = {"count": jnp.asarray(labels.shape[0], jnp.int32)}
    for name, m in levels.items():
        m = np.asarray(m, np.float32)
        if m.shape[0] != logits.shape[1]:
            raise ValueError(f"level {name!r} has {m.shape[0]} classes, logits have {logits.shape[1]}")
        node_p = jnp.matmul(probs, jnp.asarray(m), precision=jax.lax.Precision.HIGHEST)  # (B, nodes)
        true_node = jnp.asarray(np.argmax(m, axis=1).astype(np.int32))[labels]
        true_p = jnp.take_along_axis(node_p, true_node[:, None], axis=1)
        rank = jnp.sum(node_p > true_p, axis=1)  # nodes strictly more probable than the true one
        finite = jnp.all(jnp.isfinite(node_p), axis=1)  # a NaN row compares False everywhere: never a hit
        for k in top_k:
            out[f"{name}/top{k}"] = jnp.sum((rank < k) & finite).astype(jnp.int32)
    return out


def summarize_imc(sums: Mapping[str, float]) -> dict[str, float]:
    """Accuracies ``{"<level>/top<k>": hits / count}`` from summed batch counts."""
    count = float(sums["count"])
    if count <= 0:
        raise ValueError("no validation samples were counted")
    return {key: float(value) / count for key, value in sums.items() if "/top" in key}
