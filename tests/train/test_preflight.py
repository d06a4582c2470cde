"""Memory preflight: a step that does not fit the (fake) device memory is split into micro-batches."""

import jax
import pytest
import jax.numpy as jnp
import numpy as np

from mantra_jax.train import sharding
from mantra_jax.train.optimizer import adam
from mantra_jax.train.preflight import fit_step, scaled_estimate, step_bytes
from mantra_jax.train.state import create_train_state, init_variables
from mantra_jax.train.step import make_train_step
from mantra_jax.train.tasks import localisation_task

from tests.train.conftest import mask_batch


def _hr_toy(size: int = 64):
    """The toy network (tests/train/conftest.py; compiles in about a second) on a localisation batch:
    its memory, like the real network's, grows with the batch."""
    from tests.train.conftest import ToyNet

    model = ToyNet()
    tx = adam()
    state = jax.eval_shape(lambda: create_train_state(init_variables(model, 0), tx, 0))
    spec = lambda b: {"image": jax.ShapeDtypeStruct((b, size, size, 3), jnp.uint8),  # noqa: E731
                      "mask": jax.ShapeDtypeStruct((b, size, size, 1), jnp.uint8),
                      "kind": jax.ShapeDtypeStruct((b,), jnp.int32)}
    mesh = sharding.make_mesh()
    build = lambda k: sharding.jit_train_step(make_train_step(model, localisation_task().loss_fn, tx,  # noqa: E731
                                                              micro_batches=k), mesh)
    return build, state, spec


def test_a_step_over_the_limit_is_split_into_micro_batches_that_fit():
    build, state, spec = _hr_toy()
    whole = step_bytes(build(1).lower(state, spec(8)).compile())
    limit = int(0.6 * whole)  # a fake device 60 % of what the whole batch needs
    plan = fit_step(build, state, spec(8), per_device_batch=8, limit_bytes=limit)
    assert plan.micro_batches >= 2 and plan.fits and plan.bytes <= 0.9 * limit
    assert [k for k, _ in plan.attempts] == [2 ** i for i in range(len(plan.attempts))]
    assert plan.attempts[0][1] == whole


def test_scaled_estimate_extrapolates_from_batches_one_and_two():
    build, state, spec = _hr_toy()
    est = scaled_estimate(build, state, spec, 8)
    actual = step_bytes(build(1).lower(state, spec(8)).compile())
    assert abs(est["bytes"] - actual) <= 0.25 * actual, (est, actual)


@pytest.mark.slow  # three compiles of the step and a short run
def test_training_does_not_fall_over_when_nothing_fits(toy_model, tmp_path):
    from mantra_jax.train.loop import LoopConfig, fit

    data = [mask_batch(i, b=4) for i in range(3)]
    config = LoopConfig(num_steps=3, steps_per_epoch=3, log_every_steps=1, progress=False, memory_limit_bytes=1000,
                        checkpoints=False)
    state, summary = fit(model=toy_model, model_config={}, task=localisation_task(), tx=adam(), train_data=data * 2,
                         eval_data=data[:1], workdir=tmp_path, config=config)
    assert summary["steps"] == 3 and np.isfinite(summary["last_train_loss"])
    assert summary["memory"]["micro_batches"] == 4 and not summary["memory"]["fits"]
