"""mantra_jax.io.pretrained: registry form, git blob ids, cache folder, verified add (no internet)."""

import json
import re
import shutil
import subprocess

import pytest

from mantra_jax.io import pretrained
from tests.conftest import use_test_registry

PINNED = "a3bf60b2e5adc82d3d93fdc4aa7e556fe847ab46"


@pytest.fixture
def test_registry(tmp_path, monkeypatch):
    """A registry with one entry, ``tiny``, pinning a small file's blob id; returns (file, cache folder)."""
    weights = tmp_path / "tiny.h5"
    weights.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 40)
    return weights, use_test_registry(tmp_path, monkeypatch, weights, port=9)


def test_real_registry_pins_each_release_file_at_the_commit(monkeypatch):
    monkeypatch.delenv("MANTRA_WEIGHTS_REGISTRY", raising=False)
    doc = pretrained.registry()
    assert doc["default"] == "ptrain4"
    assert sorted(doc["weights"]) == [f"ptrain{i}" for i in range(5)]
    for name, e in doc["weights"].items():
        assert re.fullmatch(r"[0-9a-f]{40}", e["blob_id"]), name
        assert e["url"] == (f"https://raw.githubusercontent.com/ISICV/ManTraNet/{PINNED}/pretrained_weights/"
                            f"{e['file']}")
        assert e["variant"] == name and "non-commercial" in e["licence"]
    assert doc["weights"]["ptrain4"]["blob_id"] == "1f46864d32778df35208c6e1ae1af511aaf33a66"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("content", [b"", b"hello\n", bytes(range(256)) * 5000])
def test_blob_id_equals_git_hash_object(tmp_path, content):
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert pretrained.blob_id(path) == expected


def test_cache_dir_honours_option_env_and_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("MANTRA_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pretrained.cache_dir() == tmp_path / "xdg" / "mantra_jax" / "weights"
    monkeypatch.setenv("MANTRA_WEIGHTS_DIR", str(tmp_path / "env"))
    assert pretrained.cache_dir() == tmp_path / "env"
    assert pretrained.cache_dir(tmp_path / "opt") == tmp_path / "opt"


def test_add_copies_a_verified_file_into_the_cache(test_registry):
    weights, cache = test_registry
    assert pretrained.status()[0]["cached"] is None
    path = pretrained.add("tiny", weights)
    assert path == cache / "tiny.h5" and path.read_bytes() == weights.read_bytes()
    assert pretrained.status()[0]["cached"] == str(path)


def test_add_refuses_a_wrong_file_and_leaves_the_cache_empty(test_registry, tmp_path):
    weights, cache = test_registry
    wrong = tmp_path / "wrong.h5"
    wrong.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(pretrained.PretrainedError, match=pretrained.blob_id(wrong)) as e:
        pretrained.add("tiny", wrong)
    assert pretrained.entry("tiny")["blob_id"] in str(e.value)
    assert not any(cache.iterdir())


def test_unknown_name_lists_the_known_ones(test_registry):
    with pytest.raises(pretrained.PretrainedError, match="choose one of tiny"):
        pretrained.entry("ptrain9")
