"""Whole-image inference: equals the model's pred, validates inputs, reports XLA costs."""

import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.infer.whole import compiled_cost, predict
from mantra_jax.io.images import preprocess
from mantra_jax.models.variants import make_imc_classifier


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
