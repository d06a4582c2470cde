"""Feeding the device: the next batch is read and copied while the current step runs.

``DeviceFeeder(iterator, keys, mesh)`` keeps one batch ahead on the device: ``next()`` returns the batch
fetched before and, after the caller has dispatched its (asynchronous) step, ``prefetch()`` reads the
following one from the host iterator and starts its copy (``shard_batch`` -> ``device_put``, which does not
wait for the transfer). The host thus prepares batch k+1 while the device computes step k.

Batches travel as they come from the loader: uint8 images and masks (4x fewer bytes than float32) are
turned into model inputs on the device by the steps (``mantra_jax.train.step.device_inputs``).

Resuming: the feeder is one batch ahead of the steps, so the input state that belongs with the train state
after step k is the iterator's state *before* batch k+1 was read. ``get_state`` / ``set_state`` give and
take exactly that (same interface as grain's iterators, so Orbax/grain checkpoint the feeder itself).

``wait_s``: host seconds spent waiting for the loader (the input-wait share of a run).
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Mapping, Sequence

from mantra_jax.train import sharding


class DeviceFeeder:
    """See the module docstring. ``keys``: batch entries kept (others dropped before the copy)."""

    def __init__(self, iterator: Iterator[Mapping[str, Any]], keys: Sequence[str], mesh: Any):
        self.iterator, self.keys, self.mesh = iterator, tuple(keys), mesh
        self.resumable = hasattr(iterator, "get_state") and hasattr(iterator, "set_state")
        self.wait_s = 0.0
        self._ahead: tuple[Any, Any, Any] | None = None  # (state before reading it, host batch, device batch)

    def _read(self) -> tuple[Any, Any, Any]:
        before = self.iterator.get_state() if self.resumable else None
        t0 = time.perf_counter()
        try:
            batch = next(self.iterator)
        finally:
            self.wait_s += time.perf_counter() - t0
        if isinstance(batch, Mapping):
            missing = [k for k in self.keys if k not in batch]
            if missing:
                raise ValueError(f"batch lacks {missing} (has {sorted(batch)})")
            batch = {k: batch[k] for k in self.keys}
        return before, batch, sharding.shard_batch(batch, self.mesh)

    def peek(self) -> Mapping[str, Any]:
        """The host copy of the next batch (read now if not yet)."""
        self.prefetch()
        return self._ahead[1]

    def peek_device(self) -> Any:
        """The device copy of the next batch (read now if not yet), without consuming it."""
        self.prefetch()
        return self._ahead[2]

    def prefetch(self) -> None:
        """Reads the next batch and starts its copy to the device, unless one is already ahead."""
        if self._ahead is None:
            self._ahead = self._read()

    def next(self) -> Any:
        """The next batch on the device (raises StopIteration when the loader is exhausted)."""
        self.prefetch()
        _, _, device_batch = self._ahead
        self._ahead = None
        return device_batch

    def get_state(self) -> Any:
        """The input state that resumes with the batch the next ``next()`` returns."""
        if not self.resumable:
            raise ValueError("the training data iterator has no get_state/set_state")
        return self._ahead[0] if self._ahead is not None else self.iterator.get_state()

    def set_state(self, state: Any) -> None:
        self.iterator.set_state(state)
        self._ahead = None
