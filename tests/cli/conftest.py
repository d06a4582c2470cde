"""Fixtures shared by the command's tests."""

import pytest

from mantra_jax.io.checkpoints import model_from_config, save_weights_file
from tests.infer.conftest import init

TINY = {"kind": "mantranet", "variant": "tiny"}


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A single-file checkpoint of the ``tiny`` variant, randomly initialised (seed 3)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.msgpack"
    save_weights_file(path, TINY, init(model_from_config(TINY), 3))
    return path
