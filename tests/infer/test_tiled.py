"""Exact tiled inference: plans, halo, whole-image statistics, equality with whole-image inference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.infer.tiled import (axis_plan, bnorm_statistics, compile_count, plan, predict_auto,
                                    predict_tiled, receptive_halo)
from mantra_jax.infer.whole import predict
from mantra_jax.io.images import preprocess
from mantra_jax.models.mantranet import ManTraNet
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


@pytest.mark.slow
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


# ---- the halo is sharp for the release's receptive-field structure -------------------------------------
# Random weights hide a short halo: the only path from a pixel at the edge of the receptive field to the
# output runs through the extreme tap of every layer, a product of small weights (the release-model test
# above still passes with a halo of 40 instead of 44). Here every layer is a pure shift to the right along W
# (kernels with a single 1 at the rightmost centre-row tap; the transform adds a constant channel so that the
# L2 normalisation keeps the value), so that path carries the whole signal, and one pixel too few in the
# halo changes the map by far more than float32 rounding.

def shift_variables(model):
    """Variables of ``model`` (release layer names) whose layers all shift right along W (see above)."""
    v = jax.tree.map(np.zeros_like, jax.device_get(init(model)))
    fx, ladn = v["params"]["Featex"], v["params"]["LADN"]
    fx["b1c1"]["regular_kernel"][2, 4, 0, 0] = 1.0  # 5x5: x[j + 2], red channel
    for name, layer in fx.items():
        if name not in ("b1c1", "transform"):
            layer["kernel"][1, 2, 0, 0] = 1.0  # 3x3: y[j + 1]
    fx["transform"]["kernel"][1, 2, 0, 0] = 1.0
    fx["transform"]["bias"][1] = 1.0  # (v, 1) / |(v, 1)|
    ladn["outlierTrans"]["kernel"][0, 0, 0, 0] = 1.0
    ladn["glbStd"]["min_std"][...] = 1e-5
    v["batch_stats"]["LADN"]["bnorm"]["moving_variance"][...] = 1.0
    f = ladn["cLSTM"]["recurrent_kernel"].shape[2]
    for gate in range(4):  # i, f, c, o: each fed by x_t[j + 3] and h_{t-1}[j + 3]
        ladn["cLSTM"]["kernel"][3, 6, 0, gate * f] = 1.0
        ladn["cLSTM"]["recurrent_kernel"][3, 6, 0, gate * f] = 1.0
    ladn["cLSTM"]["bias"][f] = 1.0  # unit forget bias
    ladn["pred"]["kernel"][3, 6, 0, 0] = 2.0
    return jax.tree.map(jnp.asarray, v)


def exact_halo(model) -> int:
    """The receptive radius, derived independently of ``receptive_halo``: featex reads 2 (b1c1 5x5) + 1 per
    3x3 convolution; step t of T (1-based; the last is the global mean, radius 0) reads the window radius
    r_t, and its input reaches the output through the 7x7 input conv (3), the T - t later recurrent convs
    (3 each) and the 7x7 pred conv (3)."""
    featex = 2 + sum(len(b) for b in model.trunk) + 1
    radii = [n // 2 for n in model.windows] + [0]
    steps = len(radii)
    return featex + max(r + 3 * (steps - t) + 3 + 3 for t, r in enumerate(radii, start=1))


THIN_TRUNK = ((2,), (2, 2), (2, 2, 2), (2, 2, 2), (2, 2))  # the release's depths, two channels wide


@pytest.mark.slow
@pytest.mark.parametrize("variant,width", [("ptrain4", 100), ("ptrain0", 130)])
def test_halo_one_pixel_short_is_caught_for_the_release_structure(variant, width):
    release = make_mantranet(variant)
    model = ManTraNet(plain_filters=1, trunk=THIN_TRUNK, transform_features=2,
                      transform_activation=release.transform_activation, windows=release.windows)
    h, hr = receptive_halo(model), receptive_halo(release)
    assert (h.featex, h.window, h.steps, h.total) == (hr.featex, hr.window, hr.steps, hr.total)
    needed = exact_halo(model)
    assert needed == {"ptrain4": 38, "ptrain0": 54}[variant]  # 44 and 63 are safe but loose
    assert h.total >= needed
    v = shift_variables(model)
    img = image(8, width, 9)
    whole = predict(model, v, img)
    assert whole.std() > 0.02
    assert len(plan(8, width, 8, needed)) > 1
    # exact with the needed halo (and so with any larger one, such as the default) ...
    np.testing.assert_allclose(predict_tiled(model, v, img, tile=8, halo=needed), whole, atol=TOL, rtol=0)
    # ... and not with one pixel less (measured 9e-4 for ptrain4)
    short = predict_tiled(model, v, img, tile=8, halo=needed - 1)
    assert np.abs(short - whole).max() > 10 * TOL
