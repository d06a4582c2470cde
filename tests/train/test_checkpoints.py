import json

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mantra_jax.errors import CheckpointCorruptError, CheckpointError, CheckpointMismatchError
from mantra_jax.io.orbax_layout import restore_inference_variables
from mantra_jax.train.checkpoints import TrainCheckpoints
from mantra_jax.train.end_to_end import end_to_end_setting
from mantra_jax.train.state import create_train_state

CONFIG = {"kind": "imc", "variant": "tiny", "num_classes": 4}


def _variables(seed=0, width=3):
    rng = np.random.default_rng(seed)
    return {"params": {"Featex": {"w": jnp.asarray(rng.normal(size=(2, width)), jnp.float32)},
                       "LADN": {"b": jnp.asarray(rng.normal(size=(4,)), jnp.float32)}},
            "batch_stats": {"LADN": {"m": jnp.asarray(rng.normal(size=(4,)), jnp.float32)}}}


def _state(seed=0, width=3, setting="HR", steps=2):
    tx = end_to_end_setting(setting).tx
    state = create_train_state(_variables(seed, width), tx, seed)
    for s in range(steps):  # non-trivial optimiser moments
        grads = jax.tree.map(lambda p: jnp.full_like(p, 0.1 * (s + 1)), state.params)
        updates, opt = tx.update(grads, state.opt_state, state.params)
        state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt)
    return state


def _data_iterator():
    return iter(grain.MapDataset.source(list(range(100))).shuffle(seed=3).repeat(None).to_iter_dataset())


def _same(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_save_and_restore_round_trip_the_state_loop_and_data_iterator(tmp_path):
    state = _state()
    it = _data_iterator()
    consumed = [next(it) for _ in range(5)]
    ck = TrainCheckpoints(tmp_path)
    assert ck.save(2, state, model_config=CONFIG, loop_state={"window_loss": 1.5}, data_iterator=it)
    expected_next = [next(it) for _ in range(3)]

    fresh = _state(seed=9, steps=0)
    it2 = _data_iterator()
    restored, loop = TrainCheckpoints(tmp_path).restore(fresh, data_iterator=it2, model_config=CONFIG)
    _same(restored, state)
    assert loop == {"window_loss": 1.5}
    assert [next(it2) for _ in range(3)] == expected_next and consumed


def test_periodic_keeps_the_newest_and_best_keeps_the_lowest_loss(tmp_path):
    ck = TrainCheckpoints(tmp_path, keep=2, keep_best=2)
    state = _state()
    for step, loss in zip((1, 2, 3, 4), (3.0, 1.0, 2.0, 4.0)):
        ck.save(step, state, model_config=CONFIG)
        ck.save_best(step, state, {"loss": loss}, model_config=CONFIG)
    assert ck.periodic.all_steps() == [3, 4]
    assert sorted(ck.best.all_steps()) == [2, 3] and ck.best_step() == 2


def test_checkpoint_of_another_model_is_refused_with_the_difference_named(tmp_path):
    TrainCheckpoints(tmp_path).save(1, _state(width=3), model_config=CONFIG)
    with pytest.raises(CheckpointMismatchError, match=r"params/Featex/w: checkpoint \(2, 3\).*this run \(2, 5\)"):
        TrainCheckpoints(tmp_path).restore(_state(width=5))


def test_checkpoint_of_another_optimiser_is_refused(tmp_path):
    TrainCheckpoints(tmp_path).save(1, _state(setting="HR"), model_config=CONFIG)
    with pytest.raises(CheckpointMismatchError, match="opt_state"):
        TrainCheckpoints(tmp_path).restore(_state(setting="HF"))


def test_checkpoint_of_another_model_config_is_refused(tmp_path):
    TrainCheckpoints(tmp_path).save(1, _state(), model_config=CONFIG)
    with pytest.raises(CheckpointMismatchError, match="model config"):
        TrainCheckpoints(tmp_path).restore(_state(), model_config={**CONFIG, "num_classes": 5})


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    TrainCheckpoints(tmp_path).save(1, _state(), model_config=CONFIG)
    state_dir = tmp_path / "checkpoints" / "1" / "state"
    for f in state_dir.rglob("*"):
        if f.is_file() and f.name != "commit_success.txt":
            f.write_bytes(b"\x00garbage" * 3)
    with pytest.raises(CheckpointCorruptError, match="corrupt or incomplete"):
        TrainCheckpoints(tmp_path).restore(_state())
    with pytest.raises(CheckpointCorruptError, match="corrupt or incomplete"):
        restore_inference_variables(tmp_path / "checkpoints" / "1")


def test_checkpoint_missing_an_item_gives_a_clear_error(tmp_path):
    TrainCheckpoints(tmp_path).save(1, _state(), model_config=CONFIG)
    for f in (tmp_path / "checkpoints" / "1" / "layout").iterdir():
        f.unlink()
    (tmp_path / "checkpoints" / "1" / "layout").rmdir()
    with pytest.raises(CheckpointCorruptError, match="layout"):
        TrainCheckpoints(tmp_path).restore(_state())


def test_restore_inference_variables_prefers_the_best_checkpoint(tmp_path):
    ck = TrainCheckpoints(tmp_path, keep=3, keep_best=2)
    good, bad = _state(seed=1), _state(seed=2)
    ck.save_best(1, good, {"loss": 0.5}, model_config=CONFIG)
    ck.save_best(2, bad, {"loss": 0.9}, model_config=CONFIG)
    ck.save(2, bad, model_config=CONFIG)
    config, variables = restore_inference_variables(tmp_path)
    assert config == CONFIG
    _same(variables, {"params": good.params, "batch_stats": good.batch_stats})
    assert all(isinstance(a, np.ndarray) for a in jax.tree.leaves(variables))
    _, latest = restore_inference_variables(tmp_path / "checkpoints")
    _same(latest["params"], bad.params)


def test_restore_inference_variables_of_a_non_checkpoint_raises(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither"):
        restore_inference_variables(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="does not exist"):
        restore_inference_variables(tmp_path / "missing")


def test_restore_without_checkpoint_raises(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        TrainCheckpoints(tmp_path).restore(_state())


def test_layout_names_every_leaf(tmp_path):
    TrainCheckpoints(tmp_path).save(1, _state(), model_config=CONFIG)
    layout = json.loads((tmp_path / "checkpoints" / "1" / "layout" / "metadata").read_text())
    names = [e[0] for e in layout["entries"]]
    assert "params/Featex/w" in names and "batch_stats/LADN/m" in names and "plateau/scale" in names
    assert any(n.startswith("opt_state/") and "mu" in n for n in names)
