"""Fixtures shared by the command's tests."""

import pytest

from tests.conftest import tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A single-file checkpoint of the ``tiny`` variant, randomly initialised (seed 3)."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), 3)
