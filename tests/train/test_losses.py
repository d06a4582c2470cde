import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.train.losses import hierarchical_cross_entropy, imc_cross_entropy, node_log_probs, pixel_bce


def test_imc_cross_entropy_matches_float64_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 7)) * 3
    labels = rng.integers(0, 7, 5)
    ref = np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(5), labels])
    got = imc_cross_entropy({"logits": jnp.asarray(logits, jnp.float32)}, {"label": jnp.asarray(labels, jnp.int32)})
    np.testing.assert_allclose(float(got), ref, rtol=1e-5)


# 6 leaves in two coarse levels: 3 families {0,1,2} {3,4} {5}, and 2 groups {0..4} {5}.
FAMILIES = np.eye(3)[[0, 0, 0, 1, 1, 2]]
GROUPS = np.eye(2)[[0, 0, 0, 0, 0, 1]]


def _log_softmax64(logits):
    z = logits - logits.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def test_hierarchical_cross_entropy_matches_float64_reference():
    rng = np.random.default_rng(2)
    logits, labels = rng.normal(size=(5, 6)) * 3, rng.integers(0, 6, 5)
    p = np.exp(_log_softmax64(logits))
    rows = np.arange(5)
    ref = -np.log(p[rows, labels])
    for m in (FAMILIES, GROUPS):
        ref = ref - 0.5 * np.log((p @ m)[rows, m.argmax(1)[labels]])
    loss = hierarchical_cross_entropy([FAMILIES, GROUPS, np.eye(6)], 0.5)  # the leaf level is skipped
    got = loss({"logits": jnp.asarray(logits, jnp.float32)}, {"label": jnp.asarray(labels, jnp.int32)})
    np.testing.assert_allclose(float(got), ref.mean(), rtol=1e-5)


def test_hierarchical_cross_entropy_with_weight_zero_is_the_plain_loss():
    logits, labels = jnp.asarray(np.random.default_rng(3).normal(size=(4, 6)), jnp.float32), jnp.asarray([0, 3, 5, 1])
    plain = imc_cross_entropy({"logits": logits}, {"label": labels})
    got = hierarchical_cross_entropy([FAMILIES], 0.0)({"logits": logits}, {"label": labels})
    assert float(got) == float(plain)


def test_node_log_probs_stay_finite_for_vanishing_nodes():
    logits = np.zeros((1, 6), np.float32)
    logits[0, :5] = 300.0  # leaf 5 (alone in its family) has probability exp(-300): underflows in float32
    got = np.asarray(node_log_probs(jnp.asarray(logits), FAMILIES), np.float64)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0], [np.log(3 / 5), np.log(2 / 5), -300.0 - np.log(5)], rtol=1e-5)


def test_pixel_bce_matches_float64_reference_and_is_finite_for_extreme_logits():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 4, 4, 1)) * 5
    logits[0, 0, 0, 0], logits[0, 0, 1, 0] = 200.0, -200.0
    mask = (rng.uniform(size=logits.shape) < 0.5).astype(np.float64)
    mask[0, 0, 0, 0], mask[0, 0, 1, 0] = 0.0, 1.0  # confidently wrong: loss 200 each, not inf
    ref = np.mean(np.maximum(logits, 0) - logits * mask + np.log1p(np.exp(-np.abs(logits))))
    got = pixel_bce({"pred_logits": jnp.asarray(logits, jnp.float32)}, {"mask": jnp.asarray(mask, jnp.float32)})
    assert np.isfinite(float(got))
    np.testing.assert_allclose(float(got), ref, rtol=1e-5)


def test_shape_mismatches_raise():
    with pytest.raises(ValueError):
        pixel_bce({"pred_logits": jnp.zeros((2, 4, 4, 1))}, {"mask": jnp.zeros((2, 4, 4))})
    with pytest.raises(ValueError):
        imc_cross_entropy({"logits": jnp.zeros((2, 3))}, {"label": jnp.zeros((3,), jnp.int32)})
