import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mantra_jax.train.optimizer import adam, by_module


def _tree(seed):
    rng = np.random.default_rng(seed)
    return {"Featex": {"a": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32)},
            "LADN": {"b": jnp.asarray(rng.normal(size=(4,)), jnp.float32)}}


def test_adam_is_optax_adam_at_the_paper_rate():
    params, grads = _tree(0), _tree(1)
    u1, _ = adam().update(grads, adam().init(params), params)
    u2, _ = optax.adam(1e-4).update(grads, optax.adam(1e-4).init(params), params)
    jax.tree.map(np.testing.assert_array_equal, u1, u2)


def test_by_module_routes_each_module_and_freezes_none():
    params, grads = _tree(0), _tree(1)
    tx = by_module({"Featex": None}, optax.sgd(0.1))
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_array_equal(updates["Featex"]["a"], 0.0)
    np.testing.assert_allclose(updates["LADN"]["b"], -0.1 * grads["LADN"]["b"], rtol=1e-6)


def test_by_module_rejects_an_unknown_module():
    tx = by_module({"Nope": None}, optax.sgd(0.1))
    with pytest.raises(ValueError, match="Nope"):
        tx.init(_tree(0))


def test_non_positive_learning_rate_raises():
    with pytest.raises(ValueError):
        adam(0.0)
