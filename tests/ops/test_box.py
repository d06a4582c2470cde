import chex
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from mantra_jax.ops.box import METHODS, global_mean, global_std, window_mean, window_means
from tests.conftest import enable_x64


def window_mean_ref(x: np.ndarray, n: int) -> np.ndarray:
    """Float64 reference: separable in-image window means from float64 cumulative sums."""
    x = np.asarray(x, np.float64)
    r = n // 2
    for axis in (1, 2):
        length = x.shape[axis]
        c = np.cumsum(x, axis=axis)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        hi = np.minimum(np.arange(length) + r, length - 1) + 1
        lo = np.maximum(np.arange(length) - r, 0)
        shape = [1] * x.ndim
        shape[axis] = length
        x = (np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)) / (hi - lo).reshape(shape)
    return x


def window_mean_brute(x: np.ndarray, n: int) -> np.ndarray:
    """Direct loop reference over the in-image part of each window."""
    b, h, w, c = x.shape
    r = n // 2
    out = np.zeros((b, h, w, c))
    for i in range(h):
        for j in range(w):
            out[:, i, j] = x[:, max(i - r, 0):i + r + 1, max(j - r, 0):j + r + 1].mean(axis=(1, 2))
    return out


def test_reference_agrees_with_brute_force():
    x = np.random.default_rng(0).normal(size=(1, 9, 12, 2))
    np.testing.assert_allclose(window_mean_ref(x, 7), window_mean_brute(x, 7), atol=1e-12)


@pytest.mark.parametrize("shape,n", [((2, 23, 37, 3), 7), ((1, 23, 37, 2), 31), ((1, 5, 9, 2), 15),
                                     ((1, 3, 2, 1), 63), ((1, 1, 1, 2), 7), ((1, 40, 33, 2), 15)])
@pytest.mark.parametrize("method", METHODS)
def test_window_mean_matches_brute_force_including_small_images(shape, n, method):
    x = np.random.default_rng(1).uniform(-10, 10, shape)
    chex.assert_trees_all_close(window_mean(jnp.asarray(x, jnp.float32), n, method), window_mean_brute(x, n),
                                atol=2e-6)


@pytest.mark.parametrize("n", [7, 63])
@pytest.mark.parametrize("method", METHODS)
def test_window_mean_is_within_2e5_of_float64_at_1024(n, method):
    x = np.random.default_rng(2).uniform(-10, 10, (1, 1024, 1024, 2)).astype(np.float32)
    got = np.asarray(window_mean(jnp.asarray(x), n, method))
    err = np.abs(got - window_mean_ref(x, n)).max()
    assert err < 2e-5, f"max abs error {err} at window {n}"


def test_window_means_share_the_first_pass_and_equal_single_windows_bit_for_bit():
    x = np.random.default_rng(5).uniform(-10, 10, (2, 19, 26, 3))
    xj = jnp.asarray(x, jnp.float32)
    many = window_means(xj, (7, 15, 31, 3))
    for n, got in zip((7, 15, 31, 3), many):
        np.testing.assert_array_equal(got, window_mean(xj, n))
        chex.assert_trees_all_close(got, window_mean_brute(x, n), atol=2e-6)
    assert window_means(xj, ()) == []


def test_window_mean_rejects_an_unknown_method():
    with pytest.raises(ValueError, match="method"):
        window_mean(jnp.zeros((1, 4, 4, 1)), 3, "integral")


def test_window_mean_rejects_even_window():
    with pytest.raises(ValueError, match="odd"):
        window_mean(jnp.zeros((1, 4, 4, 1)), 4)


def test_global_mean_and_std_match_float64():
    x = np.random.default_rng(3).normal(3.0, 2.0, (2, 50, 70, 4))
    chex.assert_trees_all_close(global_mean(jnp.asarray(x, jnp.float32)), x.mean(axis=(1, 2), keepdims=True),
                                atol=1e-5)
    chex.assert_trees_all_close(global_std(jnp.asarray(x, jnp.float32)), x.std(axis=(1, 2), keepdims=True),
                                atol=1e-5)


def test_window_mean_gradients_match_finite_differences():
    with enable_x64():
        x = jnp.asarray(np.random.default_rng(4).normal(size=(1, 6, 7, 2)), jnp.float64)
        check_grads(lambda a: window_mean(a, 5), (x,), order=2, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
        check_grads(global_std, (x,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
        assert window_mean(x, 5).dtype == jnp.float64
