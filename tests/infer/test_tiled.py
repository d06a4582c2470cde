"""Exact tiled inference: plans, halo, whole-image statistics, equality with whole-image inference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.infer.tiled import (axis_plan, bnorm_statistics, compile_count, plan, predict_auto,
                                    predict_tiled, receptive_halo)
from mantra_jax.infer.whole import predict
from mantra_jax.io.images import preprocess
from mantra_jax.models.variants import make_mantranet
from tests.infer.conftest import image, init

TOL = 1e-5  # max abs difference of probabilities, tiled vs whole image


@pytest.mark.parametrize("length,tile,halo", [(1, 1, 0), (10, 3, 2), (100, 16, 44), (131, 7, 24), (57, 8, 24),
                                              (600, 512, 44), (4000, 512, 44)])
def test_axis_plan_covers_every_pixel_once_with_regions_of_one_length(length, tile, halo):
    spans = axis_plan(length, tile, halo)
    cover = np.zeros(length, int)
    for s in spans:
        cover[s.core0:s.core1] += 1
        assert 0 <= s.reg0 <= s.core0 < s.core1 <= s.reg1 <= length
    assert (cover == 1).all()
    assert len({s.reg1 - s.reg0 for s in spans}) == 1
    assert spans[0].reg1 - spans[0].reg0 == min(length, tile + 2 * halo)


@pytest.mark.parametrize("length,tile,halo", [(100, 16, 44), (131, 7, 24), (57, 8, 24), (4000, 512, 63)])
def test_axis_plan_regions_reach_the_halo_beyond_the_core_inside_the_axis(length, tile, halo):
    for s in axis_plan(length, tile, halo):
        assert s.reg0 == 0 or s.core0 - s.reg0 >= halo
        assert s.reg1 == length or s.reg1 - s.core1 >= halo


def test_receptive_halo_of_release_models_is_featex_plus_window_plus_recurrent():
    h4 = receptive_halo(make_mantranet("ptrain4"))
    assert (h4.featex, h4.window, h4.steps, h4.recurrent, h4.total) == (14, 15, 4, 15, 44)
    h0 = receptive_halo(make_mantranet("ptrain0"))
    assert (h0.window, h0.steps, h0.total) == (31, 5, 14 + 31 + 18)
    assert receptive_halo(make_mantranet("tiny", anomaly_feature="zf")).steps == 1


def test_bnorm_statistics_match_float64_whole_image_reference(tiny):
    model, v = tiny
    img = image(23, 37, 3)  # smaller than the largest window; 10 pass-1 tiles along W
    assert len(plan(23, 37, 4, receptive_halo(model).featex)) == 10
    mean, std = bnorm_statistics(model, v, img, tile=4)
    bnorm = jax.jit(lambda v, x: model.apply(v, x)["bnorm"])
    b = np.asarray(bnorm(v, jnp.asarray(preprocess(img)[None])), np.float64)
    np.testing.assert_allclose(mean[0, 0, 0], b.mean(axis=(0, 1, 2)), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(std[0, 0, 0], b.std(axis=(0, 1, 2)), atol=1e-5, rtol=1e-5)


def test_tiled_equals_whole_for_windows_7_15_31_with_odd_size(tiny):
    model, v = tiny
    img = image(29, 121, 1)
    assert len(plan(29, 121, 24, receptive_halo(model).total)) == 6  # W tiled; H fits one region
    whole = predict(model, v, img)
    assert whole.std() > 0.02  # a map with structure, not a constant
    np.testing.assert_allclose(predict_tiled(model, v, img, tile=24), whole, atol=TOL, rtol=0)


def test_tiled_equals_whole_when_both_axes_are_tiled(micro):
    model, v = micro
    assert receptive_halo(model).total == 5 + 1 + 9
    img = image(41, 47, 2)
    assert len(plan(41, 47, 8, receptive_halo(model).total)) == 6 * 6
    np.testing.assert_allclose(predict_tiled(model, v, img, tile=8), predict(model, v, img), atol=TOL, rtol=0)


def test_tiled_with_a_halo_one_pixel_short_is_not_exact(micro):
    model, v = micro
    img = image(41, 47, 2)
    short = predict_tiled(model, v, img, tile=8, halo=receptive_halo(model).total - 1)
    assert np.abs(short - predict(model, v, img)).max() > TOL


def test_image_smaller_than_the_window_is_computed_whole(tiny):
    model, v = tiny
    img = image(9, 13, 4)
    np.testing.assert_array_equal(predict_tiled(model, v, img, tile=4), predict(model, v, img))


def test_compilations_do_not_grow_with_image_size(micro):
    model, v = micro
    predict_tiled(model, v, image(39, 40, 5), tile=8)
    before = compile_count(model)
    for h, w in ((47, 41), (55, 39)):
        predict_tiled(model, v, image(h, w, 6), tile=8)
    assert compile_count(model) == before


def test_ptrain4_at_random_init_tiled_equals_whole():
    model = make_mantranet("ptrain4")
    v = init(model, 2)
    img = image(20, 116, 7)
    assert len(plan(20, 116, 24, receptive_halo(model).total)) == 5
    np.testing.assert_allclose(predict_tiled(model, v, img, tile=24), predict(model, v, img), atol=TOL, rtol=0)


def test_predict_auto_tiles_above_the_pixel_limit(tiny):
    model, v = tiny
    img = image(9, 13, 4)
    assert predict_auto(model, v, img, auto_tile_pixels=200)[1] is False
    assert predict_auto(model, v, img, auto_tile_pixels=100)[1] is True
    assert predict_auto(model, v, img, tile=4, auto_tile_pixels=10 ** 9)[1] is True


def test_predict_tiled_rejects_bad_tile_and_image(tiny):
    model, v = tiny
    with pytest.raises(ValueError, match="tile"):
        predict_tiled(model, v, image(9, 13), tile=0)
    with pytest.raises(ValueError, match="uint8"):
        predict_tiled(model, v, image(9, 13).astype(np.float32), tile=4)
