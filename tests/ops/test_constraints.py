import chex
import jax.numpy as jnp
import numpy as np

from mantra_jax.ops.constraints import bayar_project, non_negative_project, unit_norm_project


def _bayar_ref(w):
    w = np.array(w, np.float64)
    k = w.shape[0] // 2
    w[k, k] = 0
    w = w / (w.sum(axis=(0, 1), keepdims=True) + 1e-7)
    w[k, k] = -1
    return w


def test_bayar_matches_float64_reference():
    w = np.random.default_rng(0).uniform(0.1, 1.0, (5, 5, 3, 3))
    chex.assert_trees_all_close(bayar_project(jnp.asarray(w, jnp.float32)), _bayar_ref(w), rtol=1e-5, atol=1e-6)


def test_bayar_centre_is_minus_one_and_taps_sum_to_one():
    w = bayar_project(jnp.asarray(np.random.default_rng(1).normal(size=(5, 5, 3, 3)), jnp.float32) + 0.5)
    np.testing.assert_allclose(np.asarray(w)[2, 2], -1.0)
    np.testing.assert_allclose(np.asarray(w).sum(axis=(0, 1)), 0.0, atol=1e-4)


def test_unit_norm_matches_float64_reference():
    w = np.random.default_rng(2).normal(size=(1, 1, 256, 64))
    ref = w / (1e-7 + np.sqrt((w ** 2).sum(axis=(0, 1, 2), keepdims=True)))
    chex.assert_trees_all_close(unit_norm_project(jnp.asarray(w, jnp.float32)), ref, atol=1e-6)


def test_non_negative_clips_negatives():
    x = jnp.asarray([-1.0, 0.0, 2.0])
    chex.assert_trees_all_close(non_negative_project(x), jnp.asarray([0.0, 0.0, 2.0]))
