import jax
import numpy as np
import optax
import pytest

from mantra_jax.models.config import variable_shapes
from mantra_jax.models.constraints import FEATEX_CONSTRAINTS, RELEASE_CONSTRAINTS, constraint_table, under
from mantra_jax.models.variants import make_imc_classifier, make_mantranet
from mantra_jax.ops.constraints import bayar_project
from mantra_jax.train.projections import constrain, match_constraints


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return {"Featex": {"b1c1": {"bayar_kernel": rng.normal(size=(5, 5, 3, 3)).astype(np.float32),
                                "regular_kernel": rng.normal(size=(5, 5, 3, 4)).astype(np.float32)}},
            "LADN": {"outlierTrans": {"kernel": rng.normal(size=(1, 1, 8, 4)).astype(np.float32)},
                     "glbStd": {"min_std": rng.normal(size=(1, 1, 1, 4)).astype(np.float32)},
                     "pred": {"kernel": rng.normal(size=(7, 7, 8, 1)).astype(np.float32)}}}


def _projected(params, table=RELEASE_CONSTRAINTS):
    """``params`` with the projection ``match_constraints`` gives each weight applied (the others as they are)."""
    matched = match_constraints(params, table)
    name = lambda path: "/".join(k.key for k in path)  # noqa: E731
    return jax.tree_util.tree_map_with_path(lambda path, p: matched[name(path)](p) if name(path) in matched else p,
                                            params)


def test_projects_exactly_the_three_constrained_weights():
    p = _params()
    out = _projected(p)
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


def test_a_constraint_matching_no_parameter_is_an_error():
    p = {"Featex": _params()["Featex"], "IMCHead": {"kernel": np.ones((3, 3, 2, 2), np.float32)}}
    with pytest.raises(ValueError, match="LADN/outlierTrans/kernel.*matches no parameter"):
        _projected(p)
    before = jax.tree.map(np.copy, p)
    out = _projected(p, under("Featex", FEATEX_CONSTRAINTS))
    np.testing.assert_allclose(out["Featex"]["b1c1"]["bayar_kernel"], bayar_project(p["Featex"]["b1c1"]["bayar_kernel"]))
    jax.tree.map(np.testing.assert_array_equal, p, before)  # input not mutated


def test_renaming_a_module_of_the_model_breaks_its_constraints_loudly():
    model = make_mantranet("tiny", windows=(7,))
    params = variable_shapes(model)["params"]
    table = constraint_table(model)
    assert sorted(match_constraints(params, table)) == sorted(RELEASE_CONSTRAINTS)
    renamed = {("Detector" if k == "LADN" else k): v for k, v in params.items()}
    with pytest.raises(ValueError, match="LADN/outlierTrans/kernel.*renamed"):
        constrain(table).init(renamed)
    imc = make_imc_classifier("tiny", num_classes=3)
    assert list(match_constraints(variable_shapes(imc)["params"], constraint_table(imc))) == [
        "Featex/b1c1/bayar_kernel"]


def test_constrain_after_the_optimiser_lands_on_the_projected_weights_and_skips_frozen():
    p = _params(1)
    grads = jax.tree.map(lambda a: np.full_like(a, 0.3), p)
    tx = optax.chain(optax.sgd(1.0), constrain(RELEASE_CONSTRAINTS, frozen=("LADN",)))
    updates, _ = tx.update(grads, tx.init(p), p)
    new = optax.apply_updates(p, updates)
    stepped = jax.tree.map(lambda a, g: a - g, p, grads)
    np.testing.assert_allclose(new["Featex"]["b1c1"]["bayar_kernel"],
                               bayar_project(stepped["Featex"]["b1c1"]["bayar_kernel"]), atol=1e-6)
    np.testing.assert_array_equal(new["Featex"]["b1c1"]["regular_kernel"], stepped["Featex"]["b1c1"]["regular_kernel"])
    for k in ("outlierTrans", "glbStd"):  # frozen: the optimiser's update only, unprojected
        jax.tree.map(np.testing.assert_array_equal, new["LADN"][k], stepped["LADN"][k])
    with pytest.raises(ValueError, match="needs the params"):
        constrain().update(grads, optax.EmptyState())


def test_first_layers_without_a_bayar_kernel_train_with_no_featex_constraint():
    import jax.numpy as jnp

    from mantra_jax.models.constraints import constraint_table
    from mantra_jax.models.featex import FeatexConfig
    from mantra_jax.models.mantranet import IMCClassifier, ManTraNet

    for kind, has_bayar in [("srm", False), ("plain3", False), ("bayar", True), ("combined", True)]:
        fx = FeatexConfig(first_layer=kind, plain_filters=0 if kind in ("srm", "bayar") else 2, trunk=((4,),),
                          transform_features=8)
        for model in (IMCClassifier(num_classes=3, featex=fx), ManTraNet(featex=fx, windows=(3,))):
            table = constraint_table(model)
            assert ("Featex/b1c1/bayar_kernel" in table) == has_bayar
            params = jax.eval_shape(lambda m=model: m.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3))))["params"]
            params = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), params)
            constrain(table).update(jax.tree.map(jnp.zeros_like, params), optax.EmptyState(), params)  # no error
