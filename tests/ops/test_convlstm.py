import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from mantra_jax.ops.convlstm import convlstm, convlstm_step, keras_hard_sigmoid
from tests.conftest import enable_x64
from tests.ops.test_conv import _conv_valid_ref


def _same(x, k):
    p = k.shape[0] // 2
    return _conv_valid_ref(np.pad(x, ((0, 0), (p, p), (p, p), (0, 0))), k)


def _hs(v):
    return np.clip(0.2 * v + 0.5, 0, 1)


def _lstm_ref(x, kernel, rec, bias):
    b, t, h, w, _ = x.shape
    f = rec.shape[2]
    hh, cc = np.zeros((b, h, w, f)), np.zeros((b, h, w, f))
    for s in range(t):
        z = _same(x[:, s], kernel) + bias + _same(hh, rec)
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        cc = _hs(zf) * cc + _hs(zi) * np.tanh(zc)
        hh = _hs(zo) * np.tanh(cc)
    return hh


def _params(seed, cin=3, f=2, k=3):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(k, k, cin, 4 * f)) * 0.3, rng.normal(size=(k, k, f, 4 * f)) * 0.3,
            rng.normal(size=(4 * f,)) * 0.3)


def test_keras_hard_sigmoid_is_not_jax_hard_sigmoid():
    v = jnp.asarray([-3.0, -1.0, 0.0, 1.0, 3.0])
    chex.assert_trees_all_close(keras_hard_sigmoid(v), _hs(np.asarray(v)), atol=0)
    assert not np.allclose(keras_hard_sigmoid(v), jax.nn.hard_sigmoid(v))


def test_convlstm_matches_float64_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 6, 5, 3))
    k, u, b = _params(1)
    got = convlstm(*(jnp.asarray(a, jnp.float32) for a in (x, k, u, b)))
    chex.assert_shape(got, (2, 6, 5, 2))
    chex.assert_trees_all_close(got, _lstm_ref(x, k, u, b), atol=1e-5)


def test_convlstm_step_gradients_match_finite_differences():
    with enable_x64():
        rng = np.random.default_rng(2)
        k, u, b = _params(3, cin=2, f=2)
        h, c = rng.normal(size=(1, 4, 4, 2)), rng.normal(size=(1, 4, 4, 2))
        xp = rng.normal(size=(1, 4, 4, 8)) * 0.5
        check_grads(lambda hh, cc, xx, uu: convlstm_step((hh, cc), xx, uu), (h, c, xp, u), order=1,
                    modes=("rev",), atol=1e-5, rtol=1e-5)
