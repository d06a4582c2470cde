"""The single-file weights format (``*.msgpack``): a model config and its variables, with a checksum.

The file is ``flax.serialization.msgpack_serialize`` of::

    {"format": "mantra_jax.weights", "version": 2,
     "config": <the model config as a JSON string, mantra_jax.models.config>,
     "variables": {"params": ..., "batch_stats": ...},      # numpy float32 leaves
     "sha256": <hex digest of the config string and every variable: path, dtype, shape, bytes; see digest()>}

It is written atomically (temporary file + ``os.replace``); no pickle anywhere. Loading recomputes the
digest, so a flipped byte is a one-line ``CheckpointError`` naming the file rather than a silently different
network, then checks the variables' tree, shapes and dtypes against the model the config builds. Version-1
files (the same without ``sha256``) are still read.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import stat
from typing import Any, Mapping

import numpy as np

from mantra_jax.errors import CheckpointError
from mantra_jax.io.atomic import write_bytes_atomic
from mantra_jax.io.variables import check_variables
from mantra_jax.models.config import ModelConfig

FORMAT = "mantra_jax.weights"
VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_FILE_BYTES = 1 << 30  # Ptrain4 in float32 is 15 MB; 1 GiB bounds what a crafted file makes us read


def _to_numpy_tree(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {str(k): _to_numpy_tree(v) for k, v in tree.items()}
    return np.asarray(tree, dtype=np.float32)


def digest(config_json: str, variables: Mapping[str, Any]) -> str:
    """SHA-256 over the config string and every leaf of ``variables`` (sorted path, dtype, shape, bytes).

    The hashed byte stream, in order:

    1. ``config_json`` encoded as UTF-8;
    2. for each leaf, visiting mapping keys in ascending order of ``str(key)`` depth first, the UTF-8 line
       ``"\\n{path} {dtype} {shape}\\n"`` then the leaf's raw bytes in C order. ``path`` is the keys joined
       with a leading ``/`` each (``/params/LADN/pred/kernel``), ``dtype`` numpy's ``dtype.str``
       (``<f4``) and ``shape`` the Python tuple's repr (``(3, 3, 16, 1)``, ``(16,)``, ``()``).

    Returns the lowercase hex digest (64 characters).
    """
    h = hashlib.sha256(config_json.encode())

    def walk(tree: Any, prefix: str) -> None:
        if isinstance(tree, Mapping):
            for k in sorted(tree, key=str):
                walk(tree[k], f"{prefix}/{k}")
            return
        a = np.ascontiguousarray(tree)
        h.update(f"\n{prefix} {a.dtype.str} {a.shape}\n".encode())
        h.update(a.tobytes())

    walk(variables, "")
    return h.hexdigest()


def save_weights_file(path: str | os.PathLike, cfg: Mapping[str, Any] | ModelConfig, variables: Any) -> None:
    """Writes config + variables as one msgpack file, atomically (see the module docstring).

    The variables are checked against the model the config builds first, so a file never holds a
    mismatching pair.
    """
    from flax import serialization

    config = ModelConfig.from_dict(cfg)
    check_variables(config.build(), variables, "variables to save")
    tree = _to_numpy_tree(variables)
    text = config.to_json()
    payload = {"format": FORMAT, "version": VERSION, "config": text, "variables": tree,
               "sha256": digest(text, tree)}
    write_bytes_atomic(path, serialization.msgpack_serialize(payload))


def read_msgpack(path: str | os.PathLike, what: str = "weights file", max_bytes: int = MAX_FILE_BYTES) -> Any:
    """The msgpack payload of the regular file ``path`` of at most ``max_bytes`` bytes; any failure is a
    one-line ``CheckpointError`` naming the file and ``what`` it should be (e.g. ``"weights file"``)."""
    from flax import serialization

    path = pathlib.Path(path)
    try:
        info = path.stat()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{path}: not a regular file (a {what} is one)")
    if info.st_size > max_bytes:
        raise CheckpointError(f"{path}: {info.st_size} bytes, more than any mantra_jax {what} "
                              f"({max_bytes} at most)")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    try:
        return serialization.msgpack_restore(data)
    except Exception as e:  # noqa: BLE001 - msgpack raises several types for corrupt data
        raise CheckpointError(f"{path}: not a mantra_jax {what} (msgpack decoding failed: "
                              f"{type(e).__name__})") from None


def load_weights_file(path: str | os.PathLike) -> tuple[dict[str, Any], Any]:
    """Reads a single-file checkpoint. Returns ``(config, variables)`` (variables as jax arrays, checked)."""
    path = pathlib.Path(path)
    payload = read_msgpack(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a mantra_jax weights file (no '{FORMAT}' format marker)")
    if payload.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{path}: weights file version {payload.get('version')!r} is not supported "
                              f"(this code reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    text = payload.get("config")
    if not isinstance(text, str):
        raise CheckpointError(f"{path}: weights file has no valid config")
    if payload["version"] >= 2:
        if "variables" not in payload:
            raise CheckpointError(f"{path}: weights file has no variables")
        stored = payload.get("sha256")
        try:
            actual = digest(text, payload["variables"])
        except Exception as e:  # noqa: BLE001 - a garbled tree of any kind
            raise CheckpointError(f"{path}: weights file variables are not a tree of arrays ({e})") from None
        if stored != actual:
            raise CheckpointError(f"{path}: checksum mismatch: the weights file is corrupt (stored sha256 "
                                  f"{str(stored)[:12]}..., contents give {actual[:12]}...)")
    try:
        cfg = ModelConfig.from_json(text)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    if "variables" not in payload:
        raise CheckpointError(f"{path}: weights file has no variables")
    variables = check_variables(cfg.build(), payload["variables"], str(path))
    return cfg.to_dict(), variables
