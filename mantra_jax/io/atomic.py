"""Atomic file writes: write a temporary file beside the target, then ``os.replace`` it into place.

A reader (or a crash) never sees a half-written output. Files get the mode a plain ``open(path, "w")``
would give them, ``0666`` less the process umask (``mkstemp`` alone makes ``0600``). This is the one
atomic writer of the project: writers that need a path rather than a file object (h5py, Orbax) use
``atomic_path``.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
from typing import Callable, Iterator, Union

import numpy as np

PathLike = Union[str, os.PathLike]


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (else set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def output_mode() -> int:
    """Permission bits of a new output file: ``0o666 & ~umask`` (0644 under the usual umask 022)."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """Yields a temporary path beside ``path``; on success it is moved to ``path``, on error removed.

    For writers that open the file themselves: ``with atomic_path(p) as tmp: h5py.File(tmp, "w")...``.
    """
    import tempfile

    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, output_mode())
        os.replace(tmp, target)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise OSError(e.errno, f"cannot write {target}: {write_failure(e, target.parent)}") from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_failure(e: OSError, folder: PathLike) -> str:
    """Why a write failed, in words: the OS's reason, or for a short write without one (what Python reports
    as "4096 requested and 992 written"), whether the folder's file system is full."""
    import errno
    import shutil

    if e.errno == errno.ENOSPC or (e.errno is None and _free_bytes(folder, shutil) < (1 << 20)):
        return "no space left on the device"
    if e.strerror:
        return e.strerror[0].lower() + e.strerror[1:]
    return f"the write was cut short ({e}); the disk may be full"


def _free_bytes(folder: PathLike, shutil) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62


def write_atomic(path: PathLike, write: Callable[[io.BufferedWriter], None]) -> None:
    """Calls ``write(f)`` on a temporary binary file beside ``path`` and moves it to ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def save_npy_atomic(path: PathLike, array: np.ndarray) -> None:
    """``np.save`` without pickling (object arrays are refused)."""
    write_atomic(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False))
