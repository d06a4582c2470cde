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
