"""Train/eval steps: the tiny IMC classifier on a fixed batch (falling loss, eval sums), and the toy model
with the release's parameter names (projections, frozen modules, plateau scale, eval mode) because it
compiles in a second. The real ManTra-Net step runs in tests/experiments/test_runners.py."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mantra_jax.models.variants import make_imc_classifier
from mantra_jax.train.end_to_end import end_to_end_setting
from mantra_jax.train.losses import imc_cross_entropy, pixel_bce
from mantra_jax.train.state import create_train_state, init_variables
from mantra_jax.train.step import make_eval_step, make_train_step
from mantra_jax.train.tasks import imc_task, localisation_task
from tests.train import tiny
from tests.train.conftest import mask_batch

STEPS = 8


@pytest.fixture(scope="module")
def imc_run():
    """8 Adam (1e-4) steps of the tiny IMC classifier (4 classes) on one fixed 8 x 16 x 16 batch."""
    model = make_imc_classifier("tiny", num_classes=tiny.NUM_CLASSES)
    recs = tiny.imc_records(8, 0)
    batch = {"image": np.stack([r["image"] for r in recs]), "label": np.array([r["label"] for r in recs])}
    tx = optax.adam(1e-4)
    state = create_train_state(init_variables(model, 0), tx, 0)
    step = jax.jit(make_train_step(model, imc_cross_entropy, tx))
    losses = []
    for _ in range(STEPS):
        state, m = step(state, batch)
        losses.append(float(m["loss"]))
    return model, state, batch, losses


def test_imc_loss_falls_on_a_fixed_batch(imc_run):
    losses = imc_run[3]
    assert losses[-1] < 0.95 * losses[0] and np.all(np.diff(losses) < 0), losses


def test_imc_eval_step_counts_hits_and_loss(imc_run):
    model, state, batch, _ = imc_run
    sums = jax.jit(make_eval_step(model, imc_task(tiny.levels(), tiny.NUM_CLASSES)))(state, batch)
    logits = model.apply({"params": state.params}, batch["image"])["logits"]
    np.testing.assert_allclose(float(sums["loss_sum"]) / 8, float(imc_cross_entropy({"logits": logits}, batch)),
                               rtol=1e-5)
    assert int(sums["HL1/top1"]) == int(np.sum(np.argmax(logits, 1) == batch["label"]))
    assert int(sums["count"]) == 8


@pytest.fixture
def toy_run(toy_model):
    """Two Adam (lr 0.1, large enough to break the constraints) steps of the toy model, which carries the
    release's constrained parameter names."""
    variables = toy_model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    tx = optax.adam(0.1)
    state0 = create_train_state(variables, tx, 0)
    step = jax.jit(make_train_step(toy_model, pixel_bce, tx))
    state, _ = step(state0, mask_batch(0))
    state, metrics = step(state, mask_batch(1))
    return toy_model, state0, state, metrics


def test_constraints_hold_after_the_steps(toy_run):
    _, _, state, _ = toy_run
    bayar = np.asarray(state.params["Featex"]["b1c1"]["bayar_kernel"], np.float64)
    np.testing.assert_allclose(bayar[1, 1], -1.0, atol=1e-6)
    np.testing.assert_allclose(bayar.sum(axis=(0, 1)), 0.0, atol=1e-5)
    kernel = np.asarray(state.params["LADN"]["outlierTrans"]["kernel"], np.float64)
    np.testing.assert_allclose(np.linalg.norm(kernel.reshape(-1, kernel.shape[-1]), axis=0), 1.0, atol=1e-6)
    assert (np.asarray(state.params["LADN"]["glbStd"]["min_std"]) >= 0).all()


def test_train_step_updates_batch_statistics_and_counts_steps(toy_run):
    _, state0, state, metrics = toy_run
    assert int(state.step) == 2 and float(metrics["lr_scale"]) == 1.0
    assert not np.allclose(state0.batch_stats["LADN"]["mean"], state.batch_stats["LADN"]["mean"])


def test_localisation_eval_step_uses_moving_statistics(toy_run):
    model, _, state, _ = toy_run
    batch = mask_batch(2)
    sums = jax.jit(make_eval_step(model, localisation_task(("a", "b", "c", "d"))))(state, batch)
    out = model.apply({"params": state.params, "batch_stats": state.batch_stats}, batch["image"], train=False)
    np.testing.assert_allclose(float(sums["loss_sum"]) / 4, float(pixel_bce(out, batch)), rtol=1e-5)
    assert int(sums["pos_hist"].sum()) == int(batch["mask"].sum()) and int(sums["count"]) == 4


def test_frozen_module_gets_exactly_no_update_nor_projection(toy_model):
    variables = toy_model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    setting = end_to_end_setting("HF")
    state = create_train_state(variables, setting.tx, 0)
    step = jax.jit(make_train_step(toy_model, pixel_bce, setting.tx, frozen=setting.frozen))
    batch = mask_batch()
    new, _ = step(state, batch)
    new, metrics = step(new, batch)
    jax.tree.map(np.testing.assert_array_equal, new.params["Featex"], state.params["Featex"])  # bit-exact
    assert not np.allclose(new.params["LADN"]["w"], state.params["LADN"]["w"])
    assert float(metrics["grad_norm"]) > 0


def test_plateau_scale_multiplies_the_updates(toy_model):
    variables = toy_model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    tx = optax.sgd(0.1)
    step = jax.jit(make_train_step(toy_model, pixel_bce, tx, constraints=None))
    state = create_train_state(variables, tx, 0)
    half = state.replace(plateau=state.plateau.replace(scale=jnp.float32(0.5)))
    full_new, _ = step(state, mask_batch())
    half_new, m = step(half, mask_batch())
    delta = lambda s: jax.tree.map(lambda a, b: np.asarray(a) - np.asarray(b), s.params, state.params)  # noqa: E731
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, 0.5 * b, rtol=1e-5, atol=1e-7),
                 delta(half_new), delta(full_new))
    assert float(m["lr_scale"]) == 0.5


def test_unknown_frozen_module_raises(toy_model):
    variables = toy_model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    tx = optax.sgd(0.1)
    with pytest.raises(ValueError, match="Nope"):
        make_train_step(toy_model, pixel_bce, tx, frozen=("Nope",))(create_train_state(variables, tx, 0), mask_batch())


class _PerSampleNet:
    """A stand-in whose loss is a plain per-sample mean (no batch statistics), so k micro-batches of a
    batch must give exactly the whole batch's gradient. (B, H, W, 3) -> {"pred_logits": (B, H, W, 1)}."""

    def init(self, key, x):
        return {"params": {"w": jax.random.normal(key, (3, 1)) * 0.5, "b": jnp.zeros((1,))}}

    def apply(self, variables, x, train=False, mutable=()):
        p = variables["params"]
        out = {"pred_logits": jnp.tanh(x @ p["w"] + p["b"])}
        return (out, {}) if mutable else out


def test_micro_batches_give_the_whole_batch_update():
    """SGD (lr 0.5, no projections) on a batch of 4: k=2 and k=4 micro-batches match k=1 (rtol 1e-5),
    loss and update; a sum instead of the average would double / quadruple the update."""
    model = _PerSampleNet()
    variables = model.init(jax.random.key(0), None)
    tx = optax.sgd(0.5)
    batch = mask_batch(3, b=4)
    state = create_train_state(variables, tx, 0)
    whole, m1 = jax.jit(make_train_step(model, pixel_bce, tx, constraints=None))(state, batch)
    delta = lambda s: jax.tree.map(lambda a, b: np.asarray(a, np.float64) - np.asarray(b), s.params, state.params)  # noqa: E731
    for k in (2, 4):
        part, mk = jax.jit(make_train_step(model, pixel_bce, tx, constraints=None, micro_batches=k))(state, batch)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8), delta(part), delta(whole))
        np.testing.assert_allclose(float(mk["loss"]), float(m1["loss"]), rtol=1e-5)
    assert float(np.abs(delta(whole)["w"]).max()) > 1e-3  # the update is not vanishingly small
