"""Exact tiled inference: whole-image statistics, equality with whole-image inference, the stages it runs."""

import os
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.infer.halo import receptive_halo
from mantra_jax.infer.plan import plan
from mantra_jax.infer.tiled import adapted_fn, bnorm_statistics, compile_count, predict_auto, predict_tiled
from mantra_jax.infer.whole import predict
from mantra_jax.io.images import preprocess
from mantra_jax.models.compute import for_platform, with_choices
from mantra_jax.models.featex import FeatexConfig
from mantra_jax.models.mantranet import ManTraNet
from mantra_jax.models.variants import make_mantranet
from tests.infer.conftest import TOL, dots, image, init, sharpened

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


def _top_level_calls(run):
    """The model methods ``run`` traces at the top of a ``model.apply`` (not those of its submodules; not
    ``setup``, which Flax runs before any)."""
    calls = set()

    def record(next_fun, args, kwargs, context):
        if not isinstance(context.module.parent, nn.Module) and context.method_name != "setup":
            calls.add(context.method_name)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        run()
    return calls


@pytest.mark.parametrize("statistics,stages", [
    ("moving", {"adapt", "detect_from_adapted"}),
    ("image", {"outlier_transform", "normalize", "detect_from_adapted"})])
def test_tiled_passes_apply_the_models_public_stages_and_never_its_whole_call(micro, fresh_programs, statistics,
                                                                             stages):
    model, v = micro
    model = model.clone(bnorm_statistics=statistics)
    assert _top_level_calls(lambda: predict_tiled(model, v, image(41, 47, 2), tile=8)) == stages


def test_the_first_pass_resolves_the_model_for_the_backend_it_runs_on(tiny):
    model, v = tiny
    args = (v, jnp.zeros((1, 8, 8, 3), jnp.float32), jnp.ones(8), jnp.ones(8))
    runs = dots(adapted_fn(model).jitted, *args)
    assert dots(adapted_fn(for_platform(model, "gpu")).jitted, *args) == runs  # this CPU's Winograd
    assert runs > dots(adapted_fn(with_choices(model, conv_algorithm="direct")).jitted, *args)
