"""A researcher's own anomaly feature, named in the config as 'package.module:function', trains with
experiments/ladn.py's runner, is saved (Orbax and .msgpack) with its import path, is reloaded by
``mantra detect``, and is evaluated exactly tiled using its declared reach."""

import numpy as np
import pytest

from mantra_jax.ops.anomaly import pointwise, reach

FEATURE = f"{__name__}:squared_z"


@reach(pointwise)
def squared_z(x, mean, sigma, windows):
    """The README's example: the squared global Z-score, one time step; reads only the pixel itself."""
    return {"features": ((x - mean) / sigma)[:, None] ** 2}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.experiments.test_runners import _config
    from tests.train.tiny import fast_compile_models
    from experiments.runners import run_ladn

    c = _config("ladn")
    c.progress = False
    c.model.anomaly_feature, c.model.windows = FEATURE, [3]
    c.data.patch_size, c.data.val_records = 32, 2
    c.train.batch_size, c.train.steps_per_epoch, c.train.num_epochs = 2, 2, 1
    workdir = tmp_path_factory.mktemp("custom")
    with fast_compile_models():  # training with XLA's convolutions; detection below uses the default model
        return workdir, run_ladn(c, workdir)


@pytest.mark.slow
def test_a_feature_given_by_import_path_trains_saves_reloads_and_tiles_exactly(trained, tmp_path, capsys):
    from PIL import Image

    from mantra_jax import cli
    from mantra_jax.infer.halo import receptive_halo
    from mantra_jax.infer.tiled import predict_tiled
    from mantra_jax.infer.whole import predict
    from mantra_jax.io.checkpoints import load_model
    from mantra_jax.io.msgpack_weights import save_weights_file

    workdir, summary = trained
    assert summary["steps"] == 2 and np.isfinite(summary["val"]["loss"])
    model, variables, config = load_model(workdir)
    assert config["anomaly_feature"] == FEATURE  # the checkpoint records the feature's import path
    assert model.anomaly_feature == FEATURE

    image = np.random.default_rng(1).integers(0, 256, (40, 44, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    code = cli.main(["detect", str(tmp_path / "photo.png"), "-c", str(workdir), "-o", str(tmp_path / "out"),
                     "--no-progress"])
    assert code == cli.EXIT_OK, capsys.readouterr().err
    want = predict(model, variables, image)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "photo.npy"), want, atol=1e-6)

    # the feature's output is used: another feature gives another map from the same weights
    other = predict(model.clone(anomaly_feature="zf"), variables, image)
    assert np.abs(other - want).max() > 1e-4

    save_weights_file(tmp_path / "custom.msgpack", config, variables)
    _, again, cfg2 = load_model(tmp_path / "custom.msgpack")
    assert cfg2 == config

    assert receptive_halo(model).reach == (0,)  # asked of the feature (pointwise), not assumed from windows
    tiled = predict_tiled(model, again, image, tile=16)
    np.testing.assert_allclose(tiled, want, atol=2e-5)


def test_an_import_path_that_does_not_resolve_is_a_one_line_config_error():
    from mantra_jax.errors import CheckpointError
    from mantra_jax.models.config import ModelConfig

    for bad, match in ((f"{__name__}:nothing_here", "has no function"), ("no_such_pkg.mod:f", "cannot import"),
                       ("nope", "unknown anomaly feature")):
        with pytest.raises(CheckpointError, match=match) as e:
            ModelConfig("mantranet", "tiny", anomaly_feature=bad)
        assert "\n" not in str(e.value)
