"""The camera-model probe: centre crops, the k-NN classifier, the split, and the script end to end on a
synthetic folder whose two "cameras" differ by a known processing (blur against noise)."""

import json
import pathlib
import subprocess
import sys

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.eval import camera_probe as cp
from tests.conftest import subprocess_env

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "camera_probe.py"


def test_centre_crop_takes_the_centre_or_the_whole_shorter_side():
    image = np.arange(600 * 300).reshape(600, 300, 1)
    crop = cp.centre_crop(image, 512)
    assert crop.shape == (512, 300, 1)
    np.testing.assert_array_equal(crop, image[44:556])
    assert cp.centre_crop(image[:20, :30], 512).shape == (20, 30, 1)


def _knn_reference(fit_x, fit_y, test_x, k):
    """Plain-loop k-NN (float64 distances; no vote ties occur in the data used)."""
    out = []
    for x in test_x:
        d = [float(np.sum((x - f) ** 2)) for f in fit_x]
        nearest = sorted(range(len(d)), key=d.__getitem__)[:k]
        votes = np.bincount(fit_y[nearest], minlength=2)
        out.append(int(np.argmax(votes)))
    return np.array(out)


def test_knn_matches_a_plain_loop_reference():
    rng = np.random.default_rng(0)
    fit_x, test_x = rng.normal(size=(40, 5)), rng.normal(size=(25, 5))
    fit_y = (fit_x[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(np.int64)
    np.testing.assert_array_equal(cp.knn_predict(fit_x, fit_y, test_x, 7), _knn_reference(fit_x, fit_y, test_x, 7))


def test_knn_vote_tie_goes_to_the_nearest_camera():
    fit_x = np.array([[0.0], [3.0], [-2.0], [4.0]])
    fit_y = np.array([0, 1, 0, 1])
    # neighbours of 1.6: 3.0 (1), 0.0 (0), -2.0 (0), 4.0 (1) -> 2 votes each; the nearest is camera 1
    assert cp.knn_predict(fit_x, fit_y, np.array([[1.6]]), 4)[0] == 1


def test_split_halves_each_camera_with_a_fixed_seed():
    labels = np.array([0] * 5 + [1] * 4 + [2] * 1)
    fit, test = cp.split_halves(labels, seed=3)
    assert sorted(np.concatenate([fit, test]).tolist()) == list(range(10))
    assert np.bincount(labels[fit]).tolist() == [3, 2, 1] and np.bincount(labels[test], minlength=3).tolist() == [2, 2, 0]
    again = cp.split_halves(labels, seed=3)
    np.testing.assert_array_equal(fit, again[0])
    assert not np.array_equal(fit, cp.split_halves(labels, seed=4)[0])


def _synthetic_cameras(root: pathlib.Path, per_camera: int = 8, size: int = 40) -> None:
    """Two cameras: 'blurry' (Gaussian blur, sigma 1.5) and 'noisy' (additive noise, sigma 12) of random
    smooth scenes."""
    rng = np.random.default_rng(0)
    for camera in ("blurry", "noisy"):
        (root / camera).mkdir(parents=True)
        for i in range(per_camera):
            scene = cv2.resize(rng.uniform(96, 160, (5, 5, 3)).astype(np.float32), (size, size))
            if camera == "blurry":
                scene = cv2.GaussianBlur(scene, (0, 0), 1.5)
            else:
                scene = scene + rng.normal(0, 12, scene.shape)
            cv2.imwrite(str(root / camera / f"{i}.png"), np.clip(scene, 0, 255).astype(np.uint8)[..., ::-1])


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from mantra_jax.io.msgpack_weights import save_weights_file
    from mantra_jax.models.config import model_from_config

    from mantra_jax.models.config import variable_shapes

    cfg = {"kind": "imc", "variant": "tiny", "num_classes": 7}
    rng = np.random.default_rng(0)  # random weights of glorot scale, without compiling an initialiser

    def weight(s):
        fan_in = int(np.prod(s.shape[:-1])) if len(s.shape) > 1 else 1
        return (rng.normal(size=s.shape) / np.sqrt(fan_in)).astype(np.float32)

    variables = jax.tree.map(weight, variable_shapes(model_from_config(cfg)))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.msgpack"
    save_weights_file(path, cfg, dict(variables))
    return path


def _probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=subprocess_env(), timeout=300)


def test_probe_tells_blur_from_noise_end_to_end(tmp_path, tiny_checkpoint):
    _synthetic_cameras(tmp_path / "photos")
    out = tmp_path / "probe.json"
    args = ("--images", str(tmp_path / "photos"), "--checkpoint", str(tiny_checkpoint), "--out", str(out))
    proc = _probe(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert (result["fit"], result["test"], result["k"], result["chance"]) == (8, 8, 7, 0.5)
    assert result["accuracy"] == 1.0 and set(result["per_camera"]) == {"blurry", "noisy"}
    assert "7-NN camera accuracy 1.000" in proc.stdout
    # never over an existing file
    proc = _probe(*args)
    assert proc.returncode == 2 and "not overwriting" in proc.stderr, proc.stderr[-2000:]
    assert json.loads(out.read_text()) == result


def test_probe_fn_of_a_camera_set_scores_a_model(tmp_path, tiny_checkpoint):
    from mantra_jax.io.checkpoints import load_model

    _synthetic_cameras(tmp_path / "photos", per_camera=4)
    model, variables, _ = load_model(tiny_checkpoint)
    result = cp.camera_probe_fn(cp.camera_folders(tmp_path / "photos"), crop=32, k=3, seed=0)(model, variables)
    assert (result["fit"], result["test"], result["k"], result["accuracy"]) == (4, 4, 3, 1.0)
    assert result["per_camera"] == {"blurry": 1.0, "noisy": 1.0}


def test_features_are_the_mean_of_the_feature_extractor_output(tiny_checkpoint):
    from mantra_jax.io.checkpoints import load_model
    from mantra_jax.io.images import preprocess

    model, variables, _ = load_model(tiny_checkpoint)
    image = np.random.default_rng(1).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    featex = jax.jit(lambda v, x: model.apply(v, x)["featex"])
    want = featex(variables, jnp.asarray(preprocess(image))[None])[0].mean(axis=(0, 1))
    np.testing.assert_allclose(cp.feature_extractor_fn(model, variables)(image), want, rtol=1e-5, atol=1e-6)


def test_camera_pattern_groups_a_flat_folder_and_rejects_strays(tmp_path):
    for name in ("Nikon_D70_0_1.png", "Nikon_D70s_1_2.png", "Nikon_D70_1_3.png"):
        (tmp_path / name).write_bytes(b"")
    cams = cp.camera_by_pattern(tmp_path, r"^(.+?)_\d+_\d+\.")
    assert cams.cameras == ("Nikon_D70", "Nikon_D70s") and cams.labels.tolist() == [0, 0, 1]
    (tmp_path / "stray.png").write_bytes(b"")
    with pytest.raises(ValueError, match="does not match"):
        cp.camera_by_pattern(tmp_path, r"^(.+?)_\d+_\d+\.")
