"""Atomic file writes: write a temporary file beside the target, then ``os.replace`` it into place.

A reader (or a crash) never sees a half-written output. Files get mode 0644 (``mkstemp`` makes 0600).
"""

from __future__ import annotations

import io
import os
import pathlib
from typing import Callable, Union

import numpy as np

PathLike = Union[str, os.PathLike]


def write_atomic(path: PathLike, write: Callable[[io.BufferedWriter], None]) -> None:
    """Calls ``write(f)`` on a temporary binary file beside ``path`` and moves it to ``path``."""
    import tempfile

    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def save_npy_atomic(path: PathLike, array: np.ndarray) -> None:
    """``np.save`` without pickling (object arrays are refused)."""
    write_atomic(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False))
