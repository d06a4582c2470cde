import chex
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from mantra_jax.ops.anomaly import ANOMALY_FEATURES, get_anomaly_feature, time_z
from tests.conftest import enable_x64
from tests.ops.test_box import window_mean_ref

WINDOWS = (3, 7)


def _inputs(seed=0, shape=(2, 9, 11, 4)):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape)
    sigma = x.std(axis=(1, 2), keepdims=True) + 0.1
    return x, sigma


def _mean(x):
    return jnp.asarray(x.mean(axis=(1, 2), keepdims=True), jnp.float32 if x.dtype == np.float32 else None)


def _dev_ref(x):
    means = [window_mean_ref(x, n) for n in WINDOWS] + [np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape)]
    return np.stack(means, 1) - x[:, None]


def test_time_z_matches_float64_reference():
    x, sigma = _inputs()
    out = time_z(jnp.asarray(x, jnp.float32), _mean(x.astype(np.float32)), jnp.asarray(sigma, jnp.float32), WINDOWS)
    dev = _dev_ref(x)
    chex.assert_shape(out["features"], (2, 3, 9, 11, 4))
    chex.assert_trees_all_close(out["deviations"], dev, atol=1e-5)
    chex.assert_trees_all_close(out["features"], np.abs(dev / sigma[:, None]), atol=1e-5)


def test_df_and_zf_match_paper_equations():
    x, sigma = _inputs(1)
    d = x - x.mean(axis=(1, 2), keepdims=True)
    xs, ss = jnp.asarray(x, jnp.float32), jnp.asarray(sigma, jnp.float32)
    ms = _mean(x.astype(np.float32))
    chex.assert_trees_all_close(ANOMALY_FEATURES["df"](xs, ms, ss, WINDOWS)["features"], d[:, None], atol=1e-5)
    chex.assert_trees_all_close(ANOMALY_FEATURES["zf"](xs, ms, ss, WINDOWS)["features"], (d / sigma)[:, None],
                                atol=1e-5)


def test_fac_concatenates_time_steps_along_channels():
    x, sigma = _inputs(2)
    z = np.abs(_dev_ref(x) / sigma[:, None])
    ref = np.concatenate([z[:, t] for t in range(z.shape[1])], axis=-1)[:, None]
    got = ANOMALY_FEATURES["fac"](jnp.asarray(x, jnp.float32), _mean(x.astype(np.float32)),
                                 jnp.asarray(sigma, jnp.float32), WINDOWS)["features"]
    chex.assert_shape(got, (2, 1, 9, 11, 12))
    chex.assert_trees_all_close(got, ref, atol=1e-5)


def test_registry_resolves_names_and_passes_functions_through():
    assert get_anomaly_feature("time_z") is time_z
    fn = lambda x, m, s, w: {"features": x[:, None]}  # noqa: E731
    assert get_anomaly_feature(fn) is fn
    with pytest.raises(ValueError, match="unknown anomaly feature"):
        get_anomaly_feature("nope")


def test_features_reject_bad_sigma_shape():
    with pytest.raises(ValueError, match="sigma"):
        time_z(jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 1, 1, 3)), jnp.ones((1, 1, 1, 2)), WINDOWS)


@pytest.mark.parametrize("name", sorted(ANOMALY_FEATURES))
def test_feature_gradients_match_finite_differences(name):
    with enable_x64():
        x, sigma = _inputs(3, (1, 5, 6, 2))
        fn = ANOMALY_FEATURES[name]
        # Keep |.| away from its kink: shift so deviations are not zero-crossing at the test point.
        check_grads(lambda a, s: fn(a, a.mean(axis=(1, 2), keepdims=True), s, (3,))["features"],
                    (jnp.asarray(x), jnp.asarray(sigma)), order=1,
                    modes=("rev",), atol=1e-5, rtol=1e-5)


def test_a_declared_per_step_reach_is_read_and_an_undeclared_one_is_none():
    from mantra_jax.ops.anomaly import anomaly_step_reach, reach

    @reach(lambda windows: 2, lambda windows: (2, 1))
    def two_steps(x, mean, sigma, windows):
        return {"features": jnp.stack([x, x], axis=1)}

    @reach(lambda windows: 0)
    def bounded_only(x, mean, sigma, windows):
        return {"features": x[:, None]}

    assert anomaly_step_reach(two_steps, (7,)) == (2, 1)
    assert anomaly_step_reach(bounded_only, (7,)) is None
    assert anomaly_step_reach("time_z", (7, 15)) == (3, 7, 0) and anomaly_step_reach("zf", (7,)) == (0,)
    with pytest.raises(ValueError, match="per-step reach"):
        anomaly_step_reach(reach(lambda w: 0, lambda w: (-1,))(lambda x, m, s, w: {}), (7,))
