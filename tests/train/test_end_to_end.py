import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mantra_jax.train.end_to_end import end_to_end_setting, load_pretrained_featex


def _tree(seed):
    rng = np.random.default_rng(seed)
    return {"Featex": {"b1c1": {"bayar_kernel": jnp.asarray(rng.normal(size=(5, 5, 3, 3)), jnp.float32)},
                       "b2c1": {"kernel": jnp.asarray(rng.normal(size=(3, 3, 4, 4)), jnp.float32)}},
            "LADN": {"pred": {"kernel": jnp.asarray(rng.normal(size=(7, 7, 8, 1)), jnp.float32)}}}


# Same maths, but optax on a sub-tree may round differently in the last float32 bit.
_close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)  # noqa: E731


def _updates(tx, steps=3):
    """Updates of ``tx`` for a fixed sequence of gradients (several steps, so Adam's moments matter)."""
    params = _tree(0)
    state = tx.init(params)
    out = []
    for s in range(steps):
        updates, state = tx.update(_tree(10 + s), state, params)
        params = optax.apply_updates(params, updates)
        out.append(updates)
    return out


def test_fr_is_plain_adam_everywhere():
    for got, ref in zip(_updates(end_to_end_setting("FR").tx), _updates(optax.adam(1e-4))):
        jax.tree.map(np.testing.assert_array_equal, got, ref)


def test_hf_freezes_featex_exactly_and_trains_the_rest_with_adam():
    setting = end_to_end_setting("HF")
    assert setting.pretrained and setting.frozen == ("Featex",)
    ref_run = _updates(optax.adam(1e-4))
    for got, ref in zip(_updates(setting.tx), ref_run):
        jax.tree.map(lambda u: np.testing.assert_array_equal(u, 0.0), got["Featex"])
        jax.tree.map(_close, got["LADN"], ref["LADN"])


def test_hr_trains_featex_at_half_the_rate():
    setting = end_to_end_setting("HR")
    assert setting.pretrained and setting.frozen == ()
    for got, ref in zip(_updates(setting.tx), _updates(optax.adam(1e-4))):
        # Adam's update is linear in the learning rate: 5e-5 gives exactly half of 1e-4's.
        jax.tree.map(lambda a, b: _close(a, 0.5 * b), got["Featex"], ref["Featex"])
        jax.tree.map(_close, got["LADN"], ref["LADN"])


def test_unknown_setting_raises():
    with pytest.raises(ValueError, match="FR"):
        end_to_end_setting("XX")


def test_load_pretrained_featex_replaces_only_featex():
    params, imc = _tree(0), {**_tree(1), "IMCHead": {"kernel": np.zeros((3, 3, 4, 385), np.float32)}}
    out = load_pretrained_featex(params, imc)
    jax.tree.map(np.testing.assert_array_equal, out["Featex"], imc["Featex"])
    jax.tree.map(np.testing.assert_array_equal, out["LADN"], params["LADN"])


def test_load_pretrained_featex_with_other_shapes_raises():
    imc = _tree(1)
    imc["Featex"]["b2c1"]["kernel"] = np.zeros((3, 3, 4, 8), np.float32)
    with pytest.raises(ValueError, match="b2c1"):
        load_pretrained_featex(_tree(0), imc)


def test_settings_are_data_and_a_config_can_set_any_group_rate():
    from mantra_jax.train.end_to_end import SETTINGS

    assert {k: dict(v.learning_rates) for k, v in SETTINGS.items()} == {
        "FR": {}, "HF": {"Featex": 0.0}, "HR": {"Featex": 5e-5}}
    setting = end_to_end_setting("FR", learning_rates={"LADN": 0})  # the config's learning_rates
    assert setting.frozen == ("LADN",) and not setting.pretrained
    got = _updates(setting.tx)
    ref = _updates(optax.adam(1e-4))
    for g, r in zip(got, ref):
        jax.tree.map(lambda a: np.testing.assert_array_equal(a, 0.0), g["LADN"])
        jax.tree.map(_close, g["Featex"], r["Featex"])
    assert end_to_end_setting("HR", featex_learning_rate=2e-5).learning_rates == {"Featex": 2e-5}
    with pytest.raises(ValueError, match=">= 0"):
        end_to_end_setting("FR", learning_rates={"LADN": -1.0})


@pytest.mark.parametrize("setting", ["FR", "HR"])
def test_bayar_kernel_stays_projected_in_a_localisation_run_and_the_forward_uses_it(setting):
    from mantra_jax.models.featex import FeatexConfig
    from mantra_jax.models.mantranet import ManTraNet
    from mantra_jax.train.state import create_train_state
    from mantra_jax.train.step import make_train_step
    from mantra_jax.train.tasks import localisation_task
    from tests.infer.conftest import init
    from tests.train.test_reference_step import conv

    model = ManTraNet(featex=FeatexConfig(plain_filters=2, trunk=((4,),), transform_features=8), windows=(3,))
    s = end_to_end_setting(setting, learning_rate=1e-2, featex_learning_rate=1e-2)
    rng = np.random.default_rng(2)
    batch = {"image": rng.uniform(-1, 1, (2, 12, 12, 3)).astype(np.float32),
             "mask": (rng.uniform(size=(2, 12, 12, 1)) < 0.3).astype(np.float32), "kind": np.zeros(2, np.int32)}
    state = create_train_state(init(model, 5), s.tx, 0)
    k0 = np.asarray(state.params["Featex"]["b1c1"]["bayar_kernel"])
    step = jax.jit(make_train_step(model, localisation_task().loss_fn, s.tx, frozen=s.frozen))
    for _ in range(2):
        state, _ = step(state, batch)
    k = np.asarray(state.params["Featex"]["b1c1"]["bayar_kernel"], np.float64)
    assert np.abs(k - k0).max() > 1e-3  # it was trained ...
    np.testing.assert_allclose(k[2, 2], -1.0, atol=1e-6)  # ... and projected: centre -1,
    off = k.sum(axis=(0, 1)) - k[2, 2]
    np.testing.assert_allclose(off, 1.0, atol=1e-5)  # the other taps of each filter sum to 1
    # The forward pass reads that kernel: the Bayar channels of b1c1 (the last 3) are relu(conv(x, k)).
    _, inter = model.apply({"params": state.params, "batch_stats": state.batch_stats}, jnp.asarray(batch["image"]),
                           mutable=["intermediates"])
    act = np.asarray(inter["intermediates"]["Featex"]["b1c1_act"][0])[..., -3:]
    by_hand = np.maximum(np.asarray(conv(jnp.asarray(batch["image"]), jnp.asarray(k, jnp.float32))), 0)
    np.testing.assert_allclose(act, by_hand, atol=1e-5)
