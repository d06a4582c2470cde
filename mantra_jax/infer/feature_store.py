"""A (H, W, C) float32 array written and read in rectangles, held in memory or in an anonymous temporary file.

Exact tiled inference (``mantra_jax.infer.tiled``) keeps every pixel's adapted features (64 channels for the
release models: 3 GB for a 4000 x 3000 photo) between its two passes. Above ``memory_limit`` bytes they go
to a temporary file in ``folder`` (default: Python's ``tempfile`` folder, i.e. ``$TMPDIR`` or ``/tmp``),
read and written with ``pread``/``pwrite`` one row segment at a time rather than memory-mapped, so the
file's pages sit in the kernel's page cache and never count towards the process's resident memory. The
file is created already unlinked (``tempfile.TemporaryFile``): it has no name, and its space is returned
when the store is closed or the process ends, however it ends. The whole size is reserved up front
(``posix_fallocate``), so a full disk is a clear error before any compute, not halfway through.
"""

from __future__ import annotations

import errno
import os
import tempfile
from typing import Literal

import numpy as np

MEMORY_LIMIT_BYTES = 512 << 20
Backend = Literal["auto", "memory", "file"]


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while len(data):
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


def _pread_all(fd: int, out: memoryview, offset: int) -> None:
    while len(out):
        n = os.preadv(fd, [out], offset)
        if n <= 0:
            raise OSError(errno.EIO, "feature store: short read")
        out, offset = out[n:], offset + n


class FeatureStore:
    """(H, W, C) float32 storage; a context manager (``close`` frees the memory or the file).

    Args:
      shape: (H, W, C).
      backend: "memory", "file" or "auto" (memory up to ``memory_limit`` bytes, else a file).
      folder: where the temporary file goes (None: ``tempfile.gettempdir()``).
    Raises:
      OSError when the file cannot be created or its size reserved (e.g. not enough disk space).
    """

    def __init__(self, shape: tuple[int, int, int], *, backend: Backend = "auto", folder: str | None = None,
                 memory_limit: int = MEMORY_LIMIT_BYTES) -> None:
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"FeatureStore needs a shape (H, W, C) of positive sizes, got {shape}")
        self.shape = tuple(int(s) for s in shape)
        self.nbytes = int(np.prod(self.shape)) * 4
        if backend == "auto":
            backend = "memory" if self.nbytes <= memory_limit else "file"
        if backend not in ("memory", "file"):
            raise ValueError(f"FeatureStore backend must be 'auto', 'memory' or 'file', got {backend!r}")
        self.backend = backend
        self._array: np.ndarray | None = None
        self._file = None
        if backend == "memory":
            self._array = np.empty(self.shape, np.float32)
            return
        self._file = tempfile.TemporaryFile(prefix="mantra_features_", dir=folder)
        try:
            try:
                os.posix_fallocate(self._file.fileno(), 0, self.nbytes)
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                os.ftruncate(self._file.fileno(), self.nbytes)
        except OSError as e:
            self.close()
            where = folder or tempfile.gettempdir()
            raise OSError(e.errno, f"cannot reserve {self.nbytes / 2 ** 30:.2f} GiB for tiled-inference "
                                   f"features in {where}: {e.strerror} (set TMPDIR to another folder)") from None

    def _check(self, row0: int, row1: int, col0: int, col1: int) -> None:
        h, w, _ = self.shape
        if not (0 <= row0 < row1 <= h and 0 <= col0 < col1 <= w):
            raise ValueError(f"rectangle rows [{row0}, {row1}) cols [{col0}, {col1}) outside the store {self.shape}")

    def write(self, row0: int, col0: int, block: np.ndarray) -> None:
        """Stores ``block`` (h, w, C) at rows [row0, row0 + h), columns [col0, col0 + w)."""
        if block.ndim != 3 or block.shape[2] != self.shape[2]:
            raise ValueError(f"block {block.shape} does not fit a store of shape {self.shape}")
        self._check(row0, row0 + block.shape[0], col0, col0 + block.shape[1])
        if self._array is not None:
            self._array[row0:row0 + block.shape[0], col0:col0 + block.shape[1]] = block
            return
        data = np.ascontiguousarray(block, np.float32)
        fd, width, row_bytes = self._fd(), self.shape[1], self.shape[2] * 4
        for i in range(data.shape[0]):
            _pwrite_all(fd, memoryview(data[i]).cast("B"), ((row0 + i) * width + col0) * row_bytes)

    def read(self, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        """The (row1 - row0, col1 - col0, C) rectangle (a view for the memory backend: do not modify it)."""
        self._check(row0, row1, col0, col1)
        if self._array is not None:
            return self._array[row0:row1, col0:col1]
        out = np.empty((row1 - row0, col1 - col0, self.shape[2]), np.float32)
        fd, width, row_bytes = self._fd(), self.shape[1], self.shape[2] * 4
        for i in range(out.shape[0]):
            _pread_all(fd, memoryview(out[i]).cast("B"), ((row0 + i) * width + col0) * row_bytes)
        return out

    def _fd(self) -> int:
        if self._file is None:
            raise ValueError("FeatureStore is closed")
        return self._file.fileno()

    def close(self) -> None:
        """Frees the array or closes (and so deletes) the temporary file. Idempotent."""
        self._array = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MEMORY_LIMIT_BYTES", "FeatureStore"]
