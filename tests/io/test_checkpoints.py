"""Model configs, the single-file weights format and the one checkpoint loader."""

import json

import jax
import numpy as np
import pytest
from flax import serialization

from mantra_jax.errors import CheckpointError
from mantra_jax.io.checkpoints import load_model
from mantra_jax.io.msgpack_weights import load_weights_file, save_weights_file
from mantra_jax.io.variables import parameter_count
from mantra_jax.models.config import check_config, model_from_config
from mantra_jax.models.mantranet import IMCClassifier, ManTraNet
from tests.infer.conftest import init

TINY = {"kind": "mantranet", "variant": "tiny", "windows": [7, 15], "anomaly_feature": "time_z"}


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    model = model_from_config(TINY)
    variables = init(model, 3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.msgpack"
    save_weights_file(path, TINY, variables)
    return path, model, variables


def _equal(a, b):
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(np.array_equal(x, y)), a, b)))


def test_config_builds_the_described_models():
    m = model_from_config(TINY)
    assert isinstance(m, ManTraNet) and m.windows == (7, 15) and m.transform_features == 64
    imc = model_from_config({"kind": "imc", "variant": "ptrain4", "num_classes": 7})
    assert isinstance(imc, IMCClassifier) and imc.num_classes == 7
    assert check_config({"kind": "mantranet", "variant": "PTRAIN4"}) == {
        "kind": "mantranet", "variant": "ptrain4", "windows": [7, 15, 31], "anomaly_feature": "time_z"}


@pytest.mark.parametrize("cfg,match", [
    ({"kind": "mantranet", "variant": "tiny", "windos": [7]}, "unknown key"),
    ({"kind": "detector", "variant": "tiny"}, "kind"),
    ({"kind": "mantranet", "variant": "ptrain9"}, "unknown variant"),
    ({"kind": "mantranet", "variant": "tiny", "windows": [8]}, "odd"),
    ({"kind": "mantranet", "variant": "tiny", "anomaly_feature": "nope"}, "anomaly_feature"),
    ({"kind": "imc", "variant": "tiny", "windows": [7]}, "apply to kind .mantranet. only"),
    ({"kind": "imc", "variant": "tiny", "num_classes": 1}, "num_classes"),
])
def test_bad_configs_raise_one_line_errors(cfg, match):
    with pytest.raises(CheckpointError, match=match) as e:
        check_config(cfg)
    assert "\n" not in str(e.value)


def test_weights_file_round_trips_config_and_variables(tiny_file):
    path, model, variables = tiny_file
    cfg, loaded = load_weights_file(path)
    assert cfg == TINY
    assert _equal(loaded, variables)
    m2, v2, cfg2 = load_model(path)
    assert m2 == model and cfg2 == TINY and _equal(v2, variables)


def test_weights_file_is_msgpack_with_a_json_config_and_no_temporary_left(tiny_file):
    path, _, _ = tiny_file
    payload = serialization.msgpack_restore(path.read_bytes())
    assert payload["format"] == "mantra_jax.weights" and payload["version"] == 2
    assert len(payload["sha256"]) == 64
    assert json.loads(payload["config"]) == TINY
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert path.stat().st_mode & 0o777 == 0o644


def test_imc_config_round_trips(tmp_path):
    cfg = {"kind": "imc", "variant": "tiny", "num_classes": 5}
    model = model_from_config(cfg)
    variables = init(model)
    save_weights_file(tmp_path / "imc.msgpack", cfg, variables)
    m, v, c = load_model(tmp_path / "imc.msgpack")
    assert c == cfg and isinstance(m, IMCClassifier) and _equal(v, variables)
    assert parameter_count(v)["total"] == sum(a.size for a in jax.tree.leaves(variables))


def test_saving_variables_that_do_not_fit_the_config_is_refused(tmp_path, tiny_file):
    _, _, variables = tiny_file
    with pytest.raises(CheckpointError, match="shape"):
        save_weights_file(tmp_path / "x.msgpack", {**TINY, "variant": "ptrain4"}, variables)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("content,match", [
    (b"", "msgpack decoding failed|format marker"),
    (b"\x00garbage" * 10, "msgpack decoding failed|format marker"),
    (serialization.msgpack_serialize({"format": "other"}), "format marker"),
    (serialization.msgpack_serialize({"format": "mantra_jax.weights", "version": 9}), "version"),
    (serialization.msgpack_serialize({"format": "mantra_jax.weights", "version": 1, "config": "{"}), "config"),
])
def test_corrupt_weights_files_give_one_line_errors(tmp_path, content, match):
    path = tmp_path / "bad.msgpack"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as e:
        load_model(path)
    assert "\n" not in str(e.value)


def test_truncated_weights_file_is_reported(tmp_path, tiny_file):
    path = tmp_path / "cut.msgpack"
    path.write_bytes(tiny_file[0].read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="cut.msgpack"):
        load_model(path)


def test_missing_path_and_h5_options_on_msgpack_are_errors(tmp_path, tiny_file):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nothing.msgpack")
    with pytest.raises(CheckpointError, match="only to Keras"):
        load_model(tiny_file[0], variant="ptrain4")


def test_official_h5_loads_as_ptrain4(reference_path):
    model, variables, cfg = load_model(reference_path("ptrain4like_weights.h5"))
    assert cfg == {"kind": "mantranet", "variant": "ptrain4", "windows": [7, 15, 31], "anomaly_feature": "time_z"}
    assert parameter_count(variables)["total"] == 3_805_078


def test_h5_with_wrong_layout_is_reported(tmp_path):
    import h5py
    path = tmp_path / "wrong.h5"
    with h5py.File(path, "w") as f:
        f.create_group("Featex")
    with pytest.raises(CheckpointError, match="wrong.h5"):
        load_model(path)


def test_empty_directory_is_not_a_training_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=str(tmp_path.name)):
        load_model(tmp_path)
