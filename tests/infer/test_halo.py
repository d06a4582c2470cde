"""Receptive halos of the two tiled passes: their values, and that they are sharp (one pixel less is not exact)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.infer.halo import measured_reach, receptive_halo
from mantra_jax.infer.plan import plan
from mantra_jax.infer.tiled import predict_tiled
from mantra_jax.infer.whole import predict
from mantra_jax.models.featex import FeatexConfig
from mantra_jax.models.mantranet import ManTraNet
from mantra_jax.models.variants import make_mantranet
from tests.infer.conftest import TOL, image, init


def test_receptive_halo_of_release_models_is_featex_plus_window_plus_recurrent():
    h4 = receptive_halo(make_mantranet("ptrain4"))
    # steps: windows 7, 15, 31, then the global mean; the widest window's features pass 2 of 4 convolutions
    assert (h4.featex, h4.reach, h4.ladn, h4.total) == (14, (3, 7, 15, 0), 15 + 2 * 3 + 3, 38)
    h0 = receptive_halo(make_mantranet("ptrain0"))
    assert (h0.reach, h0.ladn, h0.total) == ((3, 7, 15, 31, 0), 31 + 2 * 3 + 3, 14 + 40)
    assert receptive_halo(make_mantranet("tiny", anomaly_feature="fac")).reach == (15,)


def test_declared_per_step_reach_matches_the_measured_reach():
    from mantra_jax.ops.anomaly import anomaly_step_reach, fac, time_z

    assert measured_reach(time_z, (3, 7)) == anomaly_step_reach("time_z", (3, 7)) == (1, 3, 0)
    assert measured_reach(fac, (3, 7)) == anomaly_step_reach("fac", (3, 7)) == (3,)
    assert receptive_halo(make_mantranet("tiny", anomaly_feature="zf")).steps == 1


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


