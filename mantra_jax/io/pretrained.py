"""The authors' released weights: registry, cache folder and verification by git blob id.

The registry is data (``pretrained_weights.json`` beside this module; ``$MANTRA_WEIGHTS_REGISTRY`` names
another JSON file of the same form). Each entry pins a file of github.com/ISICV/ManTraNet at one commit by its
git blob id, ``sha1(b"blob %d\\0" % size + content)`` (what ``git hash-object`` prints). The release is
"made available for academic or non-commercial purposes only": this project never redistributes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
from typing import Any, BinaryIO

REGISTRY_FILE = pathlib.Path(__file__).with_name("pretrained_weights.json")
CHUNK = 1 << 20


class PretrainedError(ValueError):
    """A registry, cache or verification problem, reported as one line."""


def registry(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """``{"default": NAME, "weights": {NAME: {file, url, blob_id, licence, variant}}}``."""
    path = pathlib.Path(path or os.environ.get("MANTRA_WEIGHTS_REGISTRY") or REGISTRY_FILE)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PretrainedError(f"weights registry {path} cannot be read: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("weights"), dict) or doc.get("default") not in doc["weights"]:
        raise PretrainedError(f"weights registry {path} needs 'weights' (a table) and a 'default' among them")
    return doc


def entry(name: str, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The registry entry ``name``; PretrainedError naming the known ones when absent."""
    weights = registry(path)["weights"]
    if name not in weights:
        raise PretrainedError(f"unknown pretrained weights {name!r}; choose one of {', '.join(weights)}")
    return weights[name]


def cache_dir(option: str | os.PathLike | None = None) -> pathlib.Path:
    """``option``, else ``$MANTRA_WEIGHTS_DIR``, else ``$XDG_CACHE_HOME/mantra_jax/weights``
    (``~/.cache`` when unset)."""
    if option:
        return pathlib.Path(option).expanduser()
    if os.environ.get("MANTRA_WEIGHTS_DIR"):
        return pathlib.Path(os.environ["MANTRA_WEIGHTS_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "mantra_jax" / "weights"


def cached_path(name: str, cache: str | os.PathLike | None = None,
                registry_path: str | os.PathLike | None = None) -> pathlib.Path:
    """Where ``name`` lives in the cache (present only once verified: a finished file is renamed in)."""
    return cache_dir(cache) / entry(name, registry_path)["file"]


def blob_hasher(size: int):
    """A sha1 already fed git's blob header for ``size`` bytes; feed it the content."""
    h = hashlib.sha1()
    h.update(b"blob %d\0" % size)
    return h


def blob_id(path: str | os.PathLike) -> str:
    """The git blob id of a file (``git hash-object PATH``), read once in chunks."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h = blob_hasher(size)
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _copy_verified(src: BinaryIO, size: int, expected: str, dst: pathlib.Path, what: str) -> pathlib.Path:
    """Streams ``src`` into a temporary file beside ``dst`` while hashing; renames it in only when the blob
    id is ``expected`` (nothing is left otherwise)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    h = blob_hasher(size)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        got = h.hexdigest()
        if got != expected:
            raise PretrainedError(f"{what} has blob id {got}, expected {expected}; nothing was added to the cache")
        os.replace(tmp, dst)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return dst


def add(name: str, file: str | os.PathLike, cache: str | os.PathLike | None = None,
        registry_path: str | os.PathLike | None = None) -> pathlib.Path:
    """Verifies ``file`` against ``name``'s blob id and copies it into the cache; returns its cached path."""
    e = entry(name, registry_path)
    src = pathlib.Path(file)
    if not src.is_file():
        raise PretrainedError(f"{src} is not a file")
    with src.open("rb") as f:
        return _copy_verified(f, os.fstat(f.fileno()).st_size, e["blob_id"], cache_dir(cache) / e["file"], str(src))


def status(cache: str | os.PathLike | None = None,
           registry_path: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per registry entry: name, default, variant, blob_id, url, licence, cached (path or None)."""
    doc = registry(registry_path)
    rows = []
    for name, e in doc["weights"].items():
        path = cache_dir(cache) / e["file"]
        rows.append({"name": name, "default": name == doc["default"], "variant": e["variant"],
                     "blob_id": e["blob_id"], "url": e["url"], "licence": e["licence"],
                     "cached": str(path) if path.is_file() else None})
    return rows


def fetch(name: str, cache: str | os.PathLike | None = None, registry_path: str | os.PathLike | None = None,
          accept_licence: bool = False, timeout: float = 30.0, progress: bool | None = None) -> pathlib.Path:
    """Downloads ``name`` into the cache (once; a cached file is returned as it is) and returns its path.

    Needs ``accept_licence`` (the entry's licence was shown and accepted). The bytes go to ``.FILE.partial``
    beside the final name, hashed as they arrive; only a complete file with the pinned blob id is renamed to
    the final name, so a partial one is never taken for a finished one. After an interruption the next call
    asks the server for the rest (HTTP Range) and restarts from zero when the server sends the whole file.
    urllib honours the standard proxy variables. ``progress``: a tqdm bar on stderr (None: only on a terminal).
    """
    import http.client
    import sys
    import urllib.error
    import urllib.request

    from tqdm import tqdm

    e = entry(name, registry_path)
    folder = cache_dir(cache)
    dst = folder / e["file"]
    if dst.is_file():
        return dst
    if not accept_licence:
        raise PretrainedError(f"{name} is licensed: {e['licence']}; accept the licence to download it")
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{e['file']}.partial"
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(e["url"], headers={"Range": f"bytes={have}-"} if have else {})
    try:
        # An opener per call reads the proxy variables (http_proxy, https_proxy, no_proxy) as they are now.
        with urllib.request.build_opener().open(request, timeout=timeout) as response:
            if have and response.status == 206:
                total_text = response.headers.get("Content-Range", "").rpartition("/")[2]
                size = int(total_text) if total_text.isdigit() else have + int(response.headers["Content-Length"])
                mode = "ab"
            else:
                have, mode = 0, "wb"
                size = int(response.headers.get("Content-Length") or -1)
            if size < 0:
                raise PretrainedError(f"{e['url']} sent no Content-Length; cannot verify the download")
            h = blob_hasher(size)
            if have:
                with part.open("rb") as f:  # the part already on disk, hashed once
                    for chunk in iter(lambda: f.read(CHUNK), b""):
                        h.update(chunk)
            bar = tqdm(total=size, initial=have, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                       file=sys.stderr, disable=None if progress is None else not progress, dynamic_ncols=True)
            with part.open(mode) as out, bar:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    h.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", None) or err
        raise PretrainedError(f"cannot download {e['url']}: {reason}; run the same command again to resume"
                              ) from None
    got_size = part.stat().st_size
    if got_size < size:  # the connection closed early: the part stays for the next call to resume
        raise PretrainedError(f"cannot download {e['url']}: connection closed after {got_size} of {size} bytes; "
                              "run the same command again to resume")
    got = h.hexdigest()
    if got_size != size or got != e["blob_id"]:
        part.unlink(missing_ok=True)
        raise PretrainedError(f"{e['url']} gave {got_size} of {size} bytes with blob id {got}, expected "
                              f"{e['blob_id']}; nothing was added to the cache")
    os.replace(part, dst)
    return dst


def not_cached_message(name: str) -> str:
    """The one line that says which command puts ``name`` in the cache."""
    return (f"the {name} pretrained weights are not in the weights cache: fetch them with "
            f"`mantra weights fetch {name} --accept-licence` (licence: academic or non-commercial use only), "
            "or pass --checkpoint CKPT")


def resolve(checkpoint: str | os.PathLike | None, cache: str | os.PathLike | None = None,
            registry_path: str | os.PathLike | None = None) -> tuple[pathlib.Path, dict[str, str] | None]:
    """``(path, record)`` for a ``--checkpoint`` value: None means the registry's default; a registry name
    that is not an existing path means its cached file. ``record`` is ``{"name", "blob_id"}`` for pretrained
    weights, None for a plain path. PretrainedError (one line naming the fetch command) when not cached."""
    doc = registry(registry_path)
    name = doc["default"] if checkpoint is None or str(checkpoint) == "" else str(checkpoint)
    if checkpoint and (name not in doc["weights"] or os.path.lexists(name)):
        return pathlib.Path(checkpoint), None
    e = doc["weights"][name]
    path = cache_dir(cache) / e["file"]
    if not path.is_file():
        raise PretrainedError(not_cached_message(name))
    return path, {"name": name, "blob_id": e["blob_id"]}


def load_pretrained(name: str | None = None, cache: str | os.PathLike | None = None, **kwargs: Any):
    """``(model, variables, cfg)`` of cached pretrained weights (default: the registry's default), e.g.
    ``mantra_jax.load_pretrained("ptrain4")``; PretrainedError naming the fetch command when not cached."""
    from mantra_jax.io.checkpoints import load_model

    path, _ = resolve(name, cache)
    return load_model(path, **kwargs)


__all__ = ["not_cached_message", "resolve", "load_pretrained", "PretrainedError", "registry", "entry", "cache_dir", "cached_path", "blob_id", "add", "fetch",
           "status"]
