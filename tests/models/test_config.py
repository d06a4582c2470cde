"""The model config: validated on construction, JSON round trip, build, variable shapes, reach."""

import jax
import pytest

from mantra_jax.errors import CheckpointError
from mantra_jax.models.config import ModelConfig, catalogue_size, check_config
from mantra_jax.models.ladn import ladn_reach
from mantra_jax.models.mantranet import IMCClassifier, ManTraNet
from mantra_jax.ops.anomaly import anomaly_reach


def test_json_round_trip_keeps_every_field_and_fills_defaults():
    cfg = ModelConfig("mantranet", "PTRAIN4", dtype="bfloat16")
    assert cfg.windows == (7, 15, 31) and cfg.anomaly_feature == "time_z" and cfg.variant == "ptrain4"
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    assert cfg.to_dict() == {"kind": "mantranet", "variant": "ptrain4", "windows": [7, 15, 31],
                             "anomaly_feature": "time_z", "dtype": "bfloat16"}
    imc = ModelConfig.from_dict({"kind": "imc", "variant": "tiny"})
    assert imc.num_classes == catalogue_size() == 385
    assert check_config(imc) == {"kind": "imc", "variant": "tiny", "num_classes": 385}
    with pytest.raises(AttributeError):
        cfg.variant = "tiny"  # frozen


def test_build_and_variable_shapes_follow_the_config():
    cfg = ModelConfig("mantranet", "tiny", windows=(7, 15))
    model = cfg.build()
    assert isinstance(model, ManTraNet) and model.windows == (7, 15) and model.transform_features == 64
    shapes = cfg.variable_shapes()
    assert shapes["params"]["LADN"]["outlierTrans"]["kernel"].shape == (1, 1, 64, 64)
    assert all(isinstance(s, jax.ShapeDtypeStruct) for s in jax.tree.leaves(shapes))
    imc = ModelConfig("imc", "tiny", num_classes=7)
    assert isinstance(imc.build(), IMCClassifier)
    assert imc.variable_shapes()["params"]["IMCHead"]["kernel"].shape == (3, 3, 64, 7)
    assert list(imc.constraints()) == ["Featex/b1c1/bayar_kernel"]


def test_a_dtype_outside_the_two_supported_is_a_one_line_error():
    with pytest.raises(CheckpointError, match="dtype") as e:
        ModelConfig("imc", "tiny", dtype="float16")
    assert "\n" not in str(e.value)


def test_bnorm_convention_is_kept_only_when_not_the_release_default():
    cfg = ModelConfig.from_dict({"kind": "mantranet", "variant": "tiny", "bnorm": "image"})
    assert cfg.to_dict()["bnorm"] == "image" and cfg.build().bnorm_statistics == "image"
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    assert "bnorm" not in ModelConfig("mantranet", "tiny", bnorm="moving").to_dict()  # old configs unchanged
    assert ModelConfig("mantranet", "tiny").build().bnorm_statistics == "moving"
    for bad, message in [({"kind": "mantranet", "bnorm": "batch"}, "'bnorm' must be one of"),
                         ({"kind": "imc", "bnorm": "image"}, "apply to kind 'mantranet' only")]:
        with pytest.raises(CheckpointError, match=message):
            ModelConfig.from_dict({"variant": "tiny", **bad})


def test_registered_features_declare_their_reach():
    assert anomaly_reach("time_z", (7, 15, 31)) == 15 and anomaly_reach("fac", (7,)) == 3
    assert anomaly_reach("df", (7, 63)) == 0 and anomaly_reach("zf", (7,)) == 0
    assert ladn_reach(ModelConfig("mantranet", "ptrain0").build()) == 31
    with pytest.raises(ValueError, match="declares no spatial reach"):
        anomaly_reach(lambda x, mean, sigma, windows: {"features": x[:, None]}, (7,))


@pytest.mark.parametrize("kind", ["mantranet", "imc"])
def test_variable_shapes_traced_direct_equal_the_models_own_init(kind):
    import jax.numpy as jnp

    from mantra_jax.models.config import INIT_SHAPE, variable_shapes

    model = ModelConfig.from_dict({"kind": kind, "variant": "ptrain4"}).build()
    assert model.compute.conv_algorithm == "auto"  # the Winograd path on CPU, which variable_shapes avoids
    own = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(INIT_SHAPE, jnp.float32)))
    spec = lambda tree: jax.tree.map(lambda s: (s.shape, s.dtype), tree)  # noqa: E731
    assert spec(variable_shapes(model)) == spec(own)
