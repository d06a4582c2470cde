"""create_train_state's ``opt_state``: a previous run's optimiser state is taken as given, a mismatched one
refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.train.end_to_end import end_to_end_setting
from mantra_jax.train.state import create_train_state

PARAMS = {"Featex": {"kernel": jnp.ones((3, 2))}, "LADN": {"bias": jnp.ones((4,))}}


def _moved_state(tx):
    """The optimiser state after one update with non-zero gradients (counts 1, moments non-zero)."""
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), PARAMS)
    return tx.update(grads, tx.init(PARAMS), PARAMS)[1]


def test_given_opt_state_is_the_state_used():
    tx = end_to_end_setting("HR", 1e-3, 1e-4).tx
    moved = _moved_state(tx)
    state = create_train_state({"params": PARAMS}, tx, 0, opt_state=moved)
    for a, b in zip(jax.tree.leaves(state.opt_state), jax.tree.leaves(moved), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    fresh = create_train_state({"params": PARAMS}, tx, 0).opt_state
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(moved)))


@pytest.mark.parametrize("other", [
    {"Featex": {"kernel": jnp.ones((3, 3))}, "LADN": {"bias": jnp.ones((4,))}},  # a shape
    {"Featex": {"kernel": jnp.ones((3, 2), jnp.bfloat16)}, "LADN": {"bias": jnp.ones((4,))}},  # a dtype
    {"Featex": {"kernel": jnp.ones((3, 2))}, "LADN": {"bias": jnp.ones((4,)), "scale": jnp.ones(())}},  # the tree
])
def test_opt_state_of_other_params_is_refused(other):
    tx = end_to_end_setting("HR", 1e-3, 1e-4).tx
    with pytest.raises(ValueError, match="opt_state"):
        create_train_state({"params": PARAMS}, tx, 0, opt_state=tx.init(other))
