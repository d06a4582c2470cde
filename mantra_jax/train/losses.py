"""Training losses (paper: "optimized towards the cross-entropy loss" for both tasks).

A loss takes the model's output dict and the batch and returns the mean loss over the batch, a float32
scalar. Both are computed from logits (never from probabilities) for numerical stability.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax


def imc_cross_entropy(outputs: Mapping[str, jnp.ndarray], batch: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
    """Softmax cross-entropy of ``outputs["logits"]`` (B, N) against ``batch["label"]`` int (B,) in [0, N)."""
    logits, labels = outputs["logits"], batch["label"]
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (B, N) and labels (B,), got {logits.shape} and {labels.shape}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels))


def node_log_probs(logits: jnp.ndarray, membership: np.ndarray) -> jnp.ndarray:
    """Log marginal probability of every hierarchy node: ``log sum_{leaf in node} softmax(logits)[leaf]``.

    logits (B, C); membership (C, N) 0/1 with one 1 per row (leaf -> node). Returns (B, N), computed as a
    masked log-sum-exp of the log-softmax, so it stays finite however small a node's probability is.
    """
    membership = np.asarray(membership)
    if logits.ndim != 2 or membership.ndim != 2 or membership.shape[0] != logits.shape[1]:
        raise ValueError(f"expected logits (B, C) and membership (C, N), got {logits.shape} and {membership.shape}")
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    mask = jnp.asarray(membership.T > 0)  # (N, C)
    return jax.nn.logsumexp(jnp.where(mask[None], log_p[:, None, :], -jnp.inf), axis=-1)


def hierarchical_cross_entropy(levels: Sequence[np.ndarray], weight: float
                               ) -> Callable[[Mapping[str, jnp.ndarray], Mapping[str, jnp.ndarray]], jnp.ndarray]:
    """IMC loss with coarse-level supervision: the leaf cross-entropy plus ``weight`` times the
    cross-entropy of the true node at each coarser level, the node's probability being the sum of its
    leaves' (the same marginals as the hierarchy-level accuracies, ``mantra_jax.train.imc_metrics``).

    Not the paper's loss (plain 385-way cross-entropy, ``weight`` 0 gives exactly that): it stresses the
    family signal that the within-family confusions (e.g. JPEG quality 71 against 72) drown early in
    training, so a short CPU run visibly learns (experiments/configs/imc385.py, ``cpu``).

    levels: (C, N_l) 0/1 membership matrices of the coarse levels (leaf levels with N_l == C are skipped).
    """
    if not weight >= 0:
        raise ValueError(f"hierarchy weight must be >= 0, got {weight}")
    coarse = [np.asarray(m) for m in levels if np.shape(m)[1] != np.shape(m)[0]]
    node_of = [np.argmax(m, axis=1).astype(np.int32) for m in coarse]

    def loss(outputs: Mapping[str, jnp.ndarray], batch: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
        total = imc_cross_entropy(outputs, batch)
        if weight == 0 or not coarse:
            return total
        for m, nodes in zip(coarse, node_of):
            lp = node_log_probs(outputs["logits"], m)
            true = jnp.asarray(nodes)[batch["label"]]
            total = total - weight * jnp.mean(jnp.take_along_axis(lp, true[:, None], axis=1))
        return total

    return loss


def pixel_bce(outputs: Mapping[str, jnp.ndarray], batch: Mapping[str, jnp.ndarray]) -> jnp.ndarray:
    """Mean pixel binary cross-entropy of ``outputs["pred_logits"]`` (B, H, W, 1) against ``batch["mask"]``
    (B, H, W, 1) in [0, 1] (1 = forged), via ``optax.sigmoid_binary_cross_entropy`` on the logits."""
    logits, mask = outputs["pred_logits"], batch["mask"]
    if logits.ndim != 4 or mask.shape != logits.shape:
        raise ValueError(f"expected pred_logits and mask of the same (B, H, W, 1) shape, got {logits.shape} "
                         f"and {mask.shape}")
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), mask.astype(jnp.float32)))
