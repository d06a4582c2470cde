"""Whole-image inference: equals the model's pred, validates inputs, reports XLA costs."""

import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.infer.whole import compiled_cost, pred_fn, predict
from mantra_jax.io.images import preprocess
from mantra_jax.models.compute import for_platform, with_choices
from mantra_jax.models.variants import make_imc_classifier
from tests.infer.conftest import dots


def test_predict_returns_the_models_pred_as_float32_map(tiny):
    model, v = tiny
    img = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    got = predict(model, v, img)
    want = np.asarray(model.apply(v, jnp.asarray(preprocess(img)[None]))["pred"])[0, :, :, 0]
    assert got.dtype == np.float32 and got.shape == (9, 13)
    np.testing.assert_allclose(got, want, atol=1e-5)  # jit vs op-by-op: float32 rounding only


def test_predict_rejects_non_uint8_or_non_rgb_images(tiny):
    model, v = tiny
    with pytest.raises(ValueError, match="uint8 RGB"):
        predict(model, v, np.zeros((9, 13, 3), np.float32))
    with pytest.raises(ValueError, match="uint8 RGB"):
        predict(model, v, np.zeros((9, 13), np.uint8))


def test_predict_rejects_the_imc_classifier():
    model = make_imc_classifier("tiny", num_classes=5)
    with pytest.raises(ValueError, match="ManTraNet"):
        predict(model, {}, np.zeros((9, 13, 3), np.uint8))


def test_compiled_cost_counts_flops_roughly_proportional_to_pixels(micro):
    model, v = micro
    small, large = (compiled_cost(model, v, s, s)["flops"] for s in (16, 32))
    assert small > 0
    assert 3.5 < large / small < 4.5


def test_the_predictor_resolves_the_model_for_the_backend_it_runs_on(tiny):
    model, v = tiny
    x = jnp.zeros((1, 8, 8, 3), jnp.float32)
    runs = dots(pred_fn(model).jitted, v, x, None, None)
    # a model resolved for a GPU runs here as this CPU's (Winograd), not with the GPU's direct convolutions
    assert dots(pred_fn(for_platform(model, "gpu")).jitted, v, x, None, None) == runs
    assert runs > dots(pred_fn(with_choices(model, conv_algorithm="direct")).jitted, v, x, None, None)
