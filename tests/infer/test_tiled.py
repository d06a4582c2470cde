"""Exact tiled inference: plans, halo, whole-image statistics, equality with whole-image inference."""

import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.infer.tiled import (axis_plan, bnorm_statistics, bounded_axis_plan, compile_count, plan, predict_auto,
                                    measured_reach, predict_tiled, receptive_halo, tail_variables)
from mantra_jax.infer.tiled import _registered_reach, adapted_fn
from mantra_jax.infer.whole import predict
from mantra_jax.io.images import preprocess
from mantra_jax.models.compute import for_platform, with_choices
from mantra_jax.models.ladn import AnomalyDetector
from mantra_jax.models.featex import FeatexConfig
from mantra_jax.models.mantranet import ManTraNet
from mantra_jax.models.variants import make_mantranet
from tests.infer.conftest import dots, image, init, sharpened

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
    # steps: windows 7, 15, 31, then the global mean; the widest window's features pass 2 of 4 convolutions
    assert (h4.featex, h4.reach, h4.ladn, h4.total) == (14, (3, 7, 15, 0), 15 + 2 * 3 + 3, 38)
    h0 = receptive_halo(make_mantranet("ptrain0"))
    assert (h0.reach, h0.ladn, h0.total) == ((3, 7, 15, 31, 0), 31 + 2 * 3 + 3, 14 + 40)
    assert receptive_halo(make_mantranet("tiny", anomaly_feature="fac")).reach == (15,)


def test_registered_reach_table_matches_the_measured_reach():
    from mantra_jax.ops.anomaly import time_z

    assert measured_reach(time_z, (3, 7)) == _registered_reach("time_z", (3, 7)) == (1, 3, 0)
    assert receptive_halo(make_mantranet("tiny", anomaly_feature="zf")).steps == 1


def test_bnorm_statistics_match_float64_whole_image_reference(tiny):
    model, v = tiny
    img = image(23, 37, 3)  # smaller than the largest window; 3 pass-1 tiles along W
    assert len(plan(23, 37, 4, receptive_halo(model).featex)) == 3
    mean, std = bnorm_statistics(model, v, img, tile=4)
    bnorm = jax.jit(lambda v, x: model.apply(v, x)["bnorm"])
    b = np.asarray(bnorm(v, jnp.asarray(preprocess(img)[None])), np.float64)
    np.testing.assert_allclose(mean[0, 0, 0], b.mean(axis=(0, 1, 2)), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(std[0, 0, 0], b.std(axis=(0, 1, 2)), atol=1e-5, rtol=1e-5)


def test_tiled_equals_whole_when_both_axes_are_tiled(micro):
    model, v = micro
    halo = receptive_halo(model)
    assert (halo.featex, halo.ladn) == (5, 1 + 9)
    img = image(41, 47, 2)
    assert len(plan(41, 47, 8, halo.ladn)) == 3 * 4 and len(plan(41, 47, 8, halo.featex)) == 4 * 5
    np.testing.assert_allclose(predict_tiled(model, v, img, tile=8), predict(model, v, img), atol=TOL, rtol=0)


# Release-like LADNs on a two-layer trunk (cheap to compile): Ptrain4's windows (T = 4) and Ptrain0's (window
# 63, T = 5, tanh transform, 20 plain filters); W is tiled, H (even / odd) fits one region.
RELEASE_LIKE = {
    "ptrain4_like": ((7, 15, 31), {}, (23, 101), 24, (5, 24)),
    "ptrain0_like": ((7, 15, 31, 63), dict(transform_activation="tanh", plain_filters=20), (20, 130), 24, (5, 40)),
}


@pytest.fixture(scope="module", params=[pytest.param("ptrain0_like", marks=pytest.mark.slow), "ptrain4_like"])
def release_like(request):
    windows, fx, (h, w), tile, halos = RELEASE_LIKE[request.param]
    model = ManTraNet(featex=FeatexConfig(trunk=((4,), (8,)), transform_features=8, **fx), windows=windows)
    v = sharpened(init(model, 3))
    img = image(h, w, 8)
    return model, v, img, tile, halos, predict(model, v, img)


def test_release_like_tiled_equals_whole(release_like):
    model, v, img, tile, halos, whole = release_like
    halo = receptive_halo(model)
    assert (halo.featex, halo.ladn) == halos
    assert len(plan(*img.shape[:2], tile, halo.ladn)) >= 2 and len(plan(*img.shape[:2], tile, halo.featex)) >= 2
    assert whole.std() > 0.02
    np.testing.assert_allclose(predict_tiled(model, v, img, tile=tile), whole, atol=TOL, rtol=0)


def _short_by_one(model, img, tile, which):
    """Options that run ``which`` pass with its halo one pixel short, on regions of the exact run's length
    (tile + 2, halo - 1: no new compile for that pass), where some region edge inside the image is exactly
    that short of its core."""
    h = getattr(receptive_halo(model), {"featex_halo": "featex", "halo": "ladn"}[which]) - 1
    spans = [c for _, c in plan(img.shape[0], img.shape[1], tile + 2, h)]
    assert any(0 < s.reg0 == s.core0 - h for s in spans) or any(s.reg1 == s.core1 + h < img.shape[1] for s in spans)
    return {"tile": tile + 2, which: h}


def test_release_like_tiled_with_the_ladn_halo_one_pixel_short_is_not_exact(release_like):
    model, v, img, tile, _, whole = release_like
    got = predict_tiled(model, v, img, **_short_by_one(model, img, tile, "halo"))
    assert np.abs(got - whole).max() > TOL  # so the exact run's tolerance would catch it


@pytest.mark.parametrize("which", ["featex_halo", "halo"])
def test_tiled_with_a_halo_one_pixel_short_is_not_exact(micro, which):
    model, v = micro
    img = image(41, 47, 2)
    got = predict_tiled(model, v, img, **_short_by_one(model, img, 8, which))
    assert np.abs(got - predict(model, v, img)).max() > TOL


def test_tail_variables_make_outlier_trans_and_bnorm_exact_identities(micro):
    model, v = micro
    b = jnp.asarray(np.random.default_rng(0).normal(size=(1, 5, 6, 64)), jnp.float32)
    tv = tail_variables(v)
    ladn = AnomalyDetector(windows=model.windows)
    got = ladn.apply({"params": tv["params"]["LADN"], "batch_stats": tv["batch_stats"]["LADN"]}, b)["bnorm"]
    np.testing.assert_array_equal(np.asarray(got), np.asarray(b))


def _open_files_in(folder):
    n = 0
    for fd in pathlib.Path("/proc/self/fd").iterdir():
        try:
            n += os.readlink(fd).startswith(str(folder))
        except OSError:  # the listing's own descriptor, closed meanwhile
            pass
    return n


@pytest.mark.skipif(not pathlib.Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")
def test_file_store_gives_the_same_map_and_leaves_nothing_behind_even_on_error(micro, tmp_path):
    model, v = micro
    img = image(41, 47, 2)
    memory = predict_tiled(model, v, img, tile=8, store="memory")
    np.testing.assert_array_equal(predict_tiled(model, v, img, tile=8, store="file", store_folder=str(tmp_path)),
                                  memory)
    open_in_folder = []

    def fail(done, total):
        open_in_folder.append(_open_files_in(tmp_path))
        if done == total - 1:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        predict_tiled(model, v, img, tile=8, progress=fail, store="file", store_folder=str(tmp_path))
    assert open_in_folder and min(open_in_folder) == 1  # the (unlinked) store was open during the run
    assert not list(tmp_path.iterdir())
    assert _open_files_in(tmp_path) == 0


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
    assert len(plan(20, 116, 24, receptive_halo(model).ladn)) == 3 and len(plan(20, 116, 24, 14)) == 4
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


@pytest.mark.parametrize("length,tile,halo", [(100, 16, 10), (131, 7, 24), (57, 8, 24), (4000, 512, 14),
                                              (384, 512, 24), (600, 512, 14), (70, 8, 24)])
def test_bounded_axis_plan_covers_once_with_one_ladder_length_reaching_the_halo(length, tile, halo):
    spans = bounded_axis_plan(length, tile, halo, 32)
    cover = np.zeros(length, int)
    for s in spans:
        cover[s.core0:s.core1] += 1
        assert s.reg0 == 0 or s.core0 - s.reg0 >= halo
        assert s.reg1 == length or s.reg1 - s.core1 >= halo
    assert (cover == 1).all()
    (g,) = {s.reg1 - s.reg0 for s in spans}
    assert g == length or (g - tile - 2 * halo) % 32 == 0 and g <= tile + 2 * halo


def test_bounded_tiling_is_exact_and_its_shapes_come_from_the_ladders(micro):
    model, v = micro
    halo = receptive_halo(model)
    # tile 16, step 8: pass-1 lengths 26 or 18 (featex halo 5), pass-2 lengths 36 or 28 (LADN halo 10)
    ladders = {halo.featex: {26, 18}, halo.ladn: {36, 28}}
    for h, w in [(28, 30), (31, 40), (45, 29)]:
        img = image(h, w, h)
        np.testing.assert_allclose(predict_tiled(model, v, img, tile=16, bounded=True, step=8),
                                   predict(model, v, img), atol=TOL, rtol=0)
        for r, lengths in ladders.items():
            assert {(s.reg1 - s.reg0, c.reg1 - c.reg0) for s, c in plan(h, w, 16, r, bounded=True, step=8)} <= {
                (a, b) for a in lengths for b in lengths}


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


def exact_halo(model) -> tuple[int, int]:
    """The receptive radii (featex, LADN after bnorm), derived independently of ``receptive_halo``: featex
    reads 2 (b1c1 5x5) + 1 per 3x3 convolution; step t of T (1-based; the last is the global mean, radius 0)
    reads the window radius r_t, and its input reaches the output through the 7x7 input conv (3), the T - t
    later recurrent convs (3 each) and the 7x7 pred conv (3)."""
    featex = 2 + sum(len(b) for b in model.trunk) + 1
    radii = [n // 2 for n in model.windows] + [0]
    steps = len(radii)
    return featex, max(r + 3 * (steps - t) + 3 + 3 for t, r in enumerate(radii, start=1))


THIN_TRUNK = ((2,), (2, 2), (2, 2, 2), (2, 2, 2), (2, 2))  # the release's depths, two channels wide


@pytest.mark.parametrize("variant,width", [("ptrain4", 100),  # in the quick run: ~5 s
                                           pytest.param("ptrain0", 130, marks=pytest.mark.slow)])
def test_halo_one_pixel_short_is_caught_for_the_release_structure(variant, width):
    release = make_mantranet(variant)
    model = ManTraNet(featex=FeatexConfig(plain_filters=1, trunk=THIN_TRUNK, transform_features=2,
                                          transform_activation=release.transform_activation),
                      windows=release.windows)
    h, hr = receptive_halo(model), receptive_halo(release)
    assert (h.featex, h.ladn, h.steps, h.total) == (hr.featex, hr.ladn, hr.steps, hr.total)
    featex, ladn = exact_halo(model)
    assert featex + ladn == {"ptrain4": 38, "ptrain0": 54}[variant]
    assert (h.featex, h.ladn) == (featex, ladn)  # the tiled halos are the exact receptive radii
    v = shift_variables(model)
    img = image(8, width, 9)
    whole = predict(model, v, img)
    assert whole.std() > 0.02
    assert len(plan(8, width, 8, ladn)) > 1 and len(plan(8, width, 8, featex)) > 1
    # exact with the needed halos ...
    np.testing.assert_allclose(predict_tiled(model, v, img, tile=8, halo=ladn, featex_halo=featex), whole,
                               atol=TOL, rtol=0)
    # ... and not with one pixel less in either pass
    for short in (predict_tiled(model, v, img, tile=8, halo=ladn - 1, featex_halo=featex),
                  predict_tiled(model, v, img, tile=8, halo=ladn, featex_halo=featex - 1)):
        assert np.abs(short - whole).max() > 10 * TOL


def test_per_image_bnorm_tiled_equals_whole_and_differs_from_moving_statistics(micro):
    """``bnorm_statistics="image"`` (the PyTorch port's convention): a tile lacks the image's moments, so pass 1
    stores ``outlierTrans`` and pass 2 normalises by the whole image's. Moving statistics far from the image's
    (variance 100) with a sigma floor of 0.05 make the two conventions give different maps."""
    model, v = micro
    v = jax.tree.map(lambda a: a, v)
    c = v["params"]["LADN"]["glbStd"]["min_std"].shape[-1]
    v["params"]["LADN"]["glbStd"]["min_std"] = jnp.full((1, 1, 1, c), 0.05, jnp.float32)
    v["batch_stats"]["LADN"]["bnorm"] = {"moving_mean": jnp.full((c,), 0.3), "moving_variance": jnp.full((c,), 100.0)}
    per_image = model.clone(bnorm_statistics="image")
    img = image(41, 47, 3)
    whole = predict(per_image, v, img)
    np.testing.assert_allclose(predict_tiled(per_image, v, img, tile=8), whole, atol=TOL, rtol=0)
    assert np.abs(whole - predict(model, v, img)).max() > 100 * TOL


def test_the_first_pass_resolves_the_model_for_the_backend_it_runs_on(tiny):
    model, v = tiny
    args = (v, jnp.zeros((1, 8, 8, 3), jnp.float32), jnp.ones(8), jnp.ones(8))
    runs = dots(adapted_fn(model).jitted, *args)
    assert dots(adapted_fn(for_platform(model, "gpu")).jitted, *args) == runs  # this CPU's Winograd
    assert runs > dots(adapted_fn(with_choices(model, conv_algorithm="direct")).jitted, *args)
