"""The single-file weights format: checksum stored and checked; old version-1 files still read."""

import hashlib
import json

import numpy as np
import pytest
from flax import serialization
from flax.traverse_util import flatten_dict, unflatten_dict

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


def _sha256_by_hand(config_json: str, variables) -> str:
    """The documented layout (``digest``'s docstring), written here without the module: the config's UTF-8,
    then per leaf in ascending order of its key path, ``\\n/k1/k2 <dtype.str> <shape tuple>\\n`` and its C-order
    bytes. Sorting whole key paths as tuples visits the leaves as a depth-first walk with sorted keys does."""
    leaves = flatten_dict(variables)  # {(k1, k2, ...): array}
    stream = [config_json.encode("utf-8")]
    for key in sorted(leaves, key=lambda t: tuple(map(str, t))):
        a = np.asarray(leaves[key])
        shape = tuple(int(d) for d in a.shape)
        stream.append(("\n" + "".join("/" + str(k) for k in key) + f" {a.dtype.str} {shape}\n").encode("utf-8"))
        stream.append(a.tobytes(order="C"))
    return hashlib.sha256(b"".join(stream)).hexdigest()


def test_the_stored_digest_covers_config_and_every_variable(saved, tmp_path):
    path, variables = saved
    payload = serialization.msgpack_restore(path.read_bytes())
    config = payload["config"]
    assert payload["sha256"] == _sha256_by_hand(config, payload["variables"]) == digest(config, payload["variables"])

    # one byte of one variable: the last of the largest, so a digest of a prefix of each leaf misses it
    leaves = flatten_dict(payload["variables"])
    key = max(leaves, key=lambda k: leaves[k].size)
    raw = bytearray(np.ascontiguousarray(leaves[key]).tobytes())
    raw[-1] ^= 0x01
    leaves[key] = np.frombuffer(bytes(raw), leaves[key].dtype).reshape(leaves[key].shape)
    flipped = unflatten_dict(leaves)
    assert _sha256_by_hand(config, flipped) == digest(config, flipped) != payload["sha256"]

    # one config field that builds another network with the same variables: only the digest can tell
    edited = json.loads(config)
    edited["windows"] = [15]
    edited = json.dumps(edited, sort_keys=True)
    assert _sha256_by_hand(edited, payload["variables"]) == digest(edited, payload["variables"]) != payload["sha256"]
    bad = tmp_path / "edited.msgpack"
    bad.write_bytes(serialization.msgpack_serialize({**payload, "config": edited}))
    with pytest.raises(CheckpointError, match=r"edited\.msgpack: checksum mismatch"):
        load_model(bad)

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
