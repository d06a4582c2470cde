from fractions import Fraction

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.ops import winograd
from mantra_jax.ops.conv import conv2d_symmetric

U32 = 2.0 ** -24  # float32 unit roundoff


def _valid_ref(xp, k):
    """float64 numpy VALID 3x3 correlation."""
    h, w = xp.shape[1] - 2, xp.shape[2] - 2
    return sum(np.einsum("bhwc,co->bhwo", xp[:, i:i + h, j:j + w], k[i, j]) for i in range(3) for j in range(3))


@pytest.mark.parametrize("m", winograd.TILE_SIZES)
def test_transform_matrices_compute_1d_correlation_exactly(m):
    bt, g, at = winograd.transform_matrices(m)
    rng = np.random.default_rng(m)
    d, f = rng.normal(size=m + 2), rng.normal(size=3)
    np.testing.assert_allclose(at @ ((g @ f) * (bt @ d)), np.correlate(d, f, "valid"), rtol=0, atol=1e-12)


@pytest.mark.parametrize("m", winograd.TILE_SIZES)
def test_winograd_is_within_the_float32_error_bound_of_float64(m):
    # 13 x 11 output: not a multiple of any tile size, so the zero-extended edge tiles are exercised.
    rng = np.random.default_rng(0)
    xp, k = rng.normal(size=(2, 15, 13, 24)), rng.normal(size=(3, 3, 24, 5))
    y = np.asarray(winograd.winograd_conv3x3(jnp.asarray(xp, jnp.float32), jnp.asarray(k, jnp.float32), m))
    err = np.abs(y - _valid_ref(xp, k))
    bound = winograd.error_bound(xp, k, m, U32)
    assert y.shape == (2, 13, 11, 5)
    assert (err <= bound).all(), float((err / bound).max())
    # the bound is float32-sized, not vacuous (a wrong transform is off by O(scale)): 2e-6 (F2) to 6e-4
    # (F3, whose |transforms| are the largest) of the output scale
    assert bound.max() < 1e-3 * np.abs(_valid_ref(xp, k)).max()


def test_chosen_f4_points_have_smaller_error_than_lavins():
    rng = np.random.default_rng(1)
    xp, k = rng.normal(size=(1, 26, 26, 64)), rng.normal(size=(3, 3, 64, 4))
    ref = _valid_ref(xp, k)
    lavin = winograd._cook_toom(tuple(Fraction(p) for p in (0, 1, -1, 2, -2)), 4)
    errs = []
    for mats in (winograd.transform_matrices(4), lavin):
        saved = winograd._MATRICES[4]
        winograd._MATRICES[4] = mats
        try:
            y = winograd.winograd_conv3x3(jnp.asarray(xp, jnp.float32), jnp.asarray(k, jnp.float32), 4)
        finally:
            winograd._MATRICES[4] = saved
        errs.append(np.sqrt(np.mean((np.asarray(y, np.float64) - ref) ** 2)))
    assert errs[0] < errs[1]


@pytest.mark.slow  # ~8-20 s on 2 shared cores: compiles value and gradient for three algorithms
def test_conv2d_symmetric_winograd_values_and_gradients_match_direct():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(2, 9, 14, 32)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(3, 3, 32, 6)) / 17, jnp.float32)
    b = jnp.asarray(rng.normal(size=(6,)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(2, 9, 14, 6)), jnp.float32)

    def loss(algorithm):
        return lambda x_, k_, b_: jnp.sum(w * jnp.tanh(conv2d_symmetric(x_, k_, b_, algorithm=algorithm)))

    ref_y = conv2d_symmetric(x, k, b, algorithm="direct")
    ref_g = jax.grad(loss("direct"), argnums=(0, 1, 2))(x, k, b)
    for algorithm in ("winograd2", "winograd3", "winograd4"):
        chex.assert_trees_all_close(conv2d_symmetric(x, k, b, algorithm=algorithm), ref_y, atol=2e-5, rtol=0)
        grads = jax.grad(loss(algorithm), argnums=(0, 1, 2))(x, k, b)
        # gradient scales: dx ~ 1, dk ~ 40 (sums over 252 pixels), db ~ 10
        chex.assert_trees_all_close(grads, ref_g, atol=1e-4, rtol=1e-5)
