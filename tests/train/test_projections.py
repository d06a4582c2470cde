import jax
import numpy as np

from mantra_jax.ops.constraints import bayar_project
from mantra_jax.train.projections import project_params


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return {"Featex": {"b1c1": {"bayar_kernel": rng.normal(size=(5, 5, 3, 3)).astype(np.float32),
                                "regular_kernel": rng.normal(size=(5, 5, 3, 4)).astype(np.float32)}},
            "LADN": {"outlierTrans": {"kernel": rng.normal(size=(1, 1, 8, 4)).astype(np.float32)},
                     "glbStd": {"min_std": rng.normal(size=(1, 1, 1, 4)).astype(np.float32)},
                     "pred": {"kernel": rng.normal(size=(7, 7, 8, 1)).astype(np.float32)}}}


def test_projects_exactly_the_three_constrained_weights():
    p = _params()
    out = project_params(p)
    k = np.asarray(out["Featex"]["b1c1"]["bayar_kernel"], np.float64)
    np.testing.assert_allclose(k[2, 2], -1.0, atol=1e-6)
    np.testing.assert_allclose(k.sum(axis=(0, 1)), 0.0, atol=1e-4)  # off-centre taps sum to 1
    norms = np.linalg.norm(np.asarray(out["LADN"]["outlierTrans"]["kernel"], np.float64).reshape(-1, 4), axis=0)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    assert (np.asarray(out["LADN"]["glbStd"]["min_std"]) >= 0).all()
    np.testing.assert_array_equal(out["LADN"]["glbStd"]["min_std"], np.maximum(p["LADN"]["glbStd"]["min_std"], 0))
    # unconstrained weights untouched
    np.testing.assert_array_equal(out["Featex"]["b1c1"]["regular_kernel"], p["Featex"]["b1c1"]["regular_kernel"])
    np.testing.assert_array_equal(out["LADN"]["pred"]["kernel"], p["LADN"]["pred"]["kernel"])


def test_skip_leaves_a_module_untouched():
    p = _params()
    out = project_params(p, skip=("Featex",))
    np.testing.assert_array_equal(out["Featex"]["b1c1"]["bayar_kernel"], p["Featex"]["b1c1"]["bayar_kernel"])
    assert (np.asarray(out["LADN"]["glbStd"]["min_std"]) >= 0).all()


def test_missing_paths_are_skipped_and_input_is_not_mutated():
    p = {"Featex": _params()["Featex"], "IMCHead": {"kernel": np.ones((3, 3, 2, 2), np.float32)}}
    before = jax.tree.map(np.copy, p)
    out = project_params(p)
    np.testing.assert_allclose(out["Featex"]["b1c1"]["bayar_kernel"], bayar_project(p["Featex"]["b1c1"]["bayar_kernel"]))
    jax.tree.map(np.testing.assert_array_equal, p, before)
