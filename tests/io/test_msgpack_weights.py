"""The single-file weights format: checksum stored and checked; old version-1 files still read."""

import numpy as np
import pytest
from flax import serialization

from mantra_jax.errors import CheckpointError
from mantra_jax.io.checkpoints import load_model
from mantra_jax.io.msgpack_weights import digest, load_weights_file, save_weights_file
from mantra_jax.models.config import ModelConfig
from tests.infer.conftest import init

TINY = ModelConfig("mantranet", "tiny", windows=(7,))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    variables = init(TINY.build(), 1)
    path = tmp_path_factory.mktemp("w") / "tiny.msgpack"
    save_weights_file(path, TINY, variables)
    return path, variables


def _flip_one_kernel_byte(data: bytes, variables) -> bytes:
    """``data`` with one byte of a stored kernel flipped (found by its bytes, so the msgpack stays valid)."""
    kernel = np.asarray(variables["params"]["LADN"]["pred"]["kernel"], np.float32).tobytes()
    at = data.index(kernel) + len(kernel) // 2
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def test_a_flipped_byte_is_a_one_line_error_naming_the_file(saved, tmp_path):
    path, variables = saved
    bad = tmp_path / "flipped.msgpack"
    bad.write_bytes(_flip_one_kernel_byte(path.read_bytes(), variables))
    serialization.msgpack_restore(bad.read_bytes())  # still decodes: only the checksum can catch it
    with pytest.raises(CheckpointError, match=r"flipped\.msgpack: checksum mismatch") as e:
        load_model(bad)
    assert "\n" not in str(e.value)


def test_the_stored_digest_covers_config_and_every_variable(saved):
    path, variables = saved
    payload = serialization.msgpack_restore(path.read_bytes())
    assert payload["sha256"] == digest(payload["config"], payload["variables"])
    assert digest(payload["config"] + " ", payload["variables"]) != payload["sha256"]
    cfg, loaded = load_weights_file(path)
    assert cfg == TINY.to_dict()


def test_a_version_1_file_without_checksum_still_loads(saved, tmp_path):
    path, variables = saved
    payload = serialization.msgpack_restore(path.read_bytes())
    del payload["sha256"]
    payload["version"] = 1
    old = tmp_path / "v1.msgpack"
    old.write_bytes(serialization.msgpack_serialize(payload))
    _, loaded, cfg = load_model(old)
    assert cfg == TINY.to_dict()
    np.testing.assert_array_equal(loaded["params"]["LADN"]["pred"]["kernel"],
                                  variables["params"]["LADN"]["pred"]["kernel"])
