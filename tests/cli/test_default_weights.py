"""Pretrained weights by default and by registry name: detect without --checkpoint, --checkpoint NAME,
``mantra_jax.load_pretrained`` and the weights record in the summary."""

import json

import pytest

import mantra_jax
from mantra_jax import cli
from mantra_jax.io import pretrained
from tests.conftest import tiny_checkpoint, use_test_registry


@pytest.fixture
def cached_tiny(tmp_path, monkeypatch):
    """A test-only registry whose default ``tiny`` is a tiny model's .msgpack, added to a temporary cache."""
    ckpt = tiny_checkpoint(tmp_path / "ckpt", 3)
    use_test_registry(tmp_path, monkeypatch, ckpt)
    return pretrained.blob_id(ckpt)


def _image(tmp_path):
    from PIL import Image
    import numpy as np

    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(path)
    return path


def test_detect_without_checkpoint_names_the_fetch_command_when_the_default_is_not_cached(cached_tiny, tmp_path,
                                                                                          capsys):
    assert cli.main(["detect", str(_image(tmp_path)), "--out", str(tmp_path / "out")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mantra weights fetch tiny --accept-licence" in err[0]


@pytest.mark.slow
@pytest.mark.parametrize("option", [[], ["--checkpoint", "tiny"]])
def test_detect_uses_cached_pretrained_weights_and_records_them(cached_tiny, tmp_path, option):
    pretrained.add("tiny", tmp_path / "ckpt" / next(p.name for p in (tmp_path / "ckpt").iterdir()))
    out = tmp_path / "out"
    assert cli.main(["detect", str(_image(tmp_path)), "--out", str(out), *option]) == cli.EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["weights"] == {"name": "tiny", "blob_id": cached_tiny}


def test_load_pretrained_loads_the_cached_file(cached_tiny, tmp_path):
    pretrained.add("tiny", tmp_path / "ckpt" / next(p.name for p in (tmp_path / "ckpt").iterdir()))
    model, variables, cfg = mantra_jax.load_pretrained("tiny")
    assert cfg["kind"] == "mantranet" and cfg["variant"] == "tiny"


def _pairs(tmp_path):
    """Two forged images with masks and one authentic image, as a pairs CSV."""
    from PIL import Image
    import numpy as np

    rows = []
    for k in range(2):
        Image.fromarray(np.random.default_rng(10 + k).integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(
            tmp_path / f"f{k}.png")
        mask = np.zeros((24, 24), np.uint8)
        mask[4:12, 6:18] = 255
        Image.fromarray(mask).save(tmp_path / f"f{k}_gt.png")
        rows.append(f"{tmp_path / f'f{k}.png'},{tmp_path / f'f{k}_gt.png'}")
    path = tmp_path / "pairs.csv"
    path.write_text("image,mask\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("command, written", [
    (["eval"], ("metrics.json", "run")),
    (["robustness", "--attacks", "gaussian_noise", "--levels", "gaussian_noise=5"], ("robustness.json", None)),
])
def test_eval_and_robustness_without_checkpoint_record_the_pretrained_weights(cached_tiny, tmp_path, command,
                                                                               written):
    pretrained.add("tiny", tmp_path / "ckpt" / next(p.name for p in (tmp_path / "ckpt").iterdir()))
    out = tmp_path / "out"
    assert cli.main([command[0], "--pairs", str(_pairs(tmp_path)), "--out", str(out), *command[1:]]) == cli.EXIT_OK
    doc = json.loads((out / written[0]).read_text())
    doc = doc[written[1]] if written[1] else doc
    assert doc["weights"] == {"name": "tiny", "blob_id": cached_tiny}
