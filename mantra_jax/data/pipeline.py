"""The grain input pipeline: shuffled, batched model inputs, identical whatever the number of workers.

``make_loader`` builds ``MapDataset.source(source).shuffle(seed).repeat(num_epochs).batch(B)``, turns it
into an iterable dataset, prefetched by ``worker_count`` processes when positive (they ship uint8 batches),
and maps the batches to model inputs in the calling process. Batches are
formed BEFORE the work is split between processes (grain's ``mp_prefetch`` hands whole batch indices to
workers), and every record is a pure function of its index, so batch k is the same for 0, 1 or N workers.
(grain's ``DataLoader`` instead batches inside each worker, so its batches depend on the worker count.)
Each epoch is reshuffled (grain reseeds ``shuffle`` per epoch).

Several processes (``process_count`` > 1): ``batch_size`` is the global batch, and process p reads only
its consecutive part of each global batch, records ``p * b .. (p + 1) * b - 1`` of it (b = batch_size /
process_count), so the global batch k (the processes' parts in process order, as
``jax.make_array_from_process_local_data`` assembles them) holds the same records as batch k of one
process, and the iterator state (batches read) means the same thing on every topology.

Batches are dicts of numpy arrays: ``"image"`` float32 (B, H, W, 3) in [-1, 1] (``preprocess``), ``"mask"``
float32 (B, H, W, 1) in {0, 1}, ``"label"`` / ``"kind"`` int32 (B,); other keys pass through stacked.

Iterator state: ``it = iter(loader); state = it.get_state()`` (a small JSON-able dict) and, on a loader
built with the same arguments, ``it.set_state(state)`` continues with the same next batches (training
checkpoints store it with grain's own Orbax handler, ``mantra_jax.train.checkpoints``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mantra_jax.io.images import preprocess

_INT_KEYS = ("label", "kind")


def to_model_inputs(batch: dict[str, Any]) -> dict[str, np.ndarray]:
    """uint8 batch from a source -> model inputs (see the module docstring). Shapes are checked."""
    if "image" not in batch:
        raise ValueError(f"batch has no 'image' (keys: {sorted(batch)})")
    out = {k: np.asarray(v) for k, v in batch.items()}
    out["image"] = preprocess(out["image"])
    if out["image"].ndim != 4:
        raise ValueError(f"batch image must be (B, H, W, 3), got {out['image'].shape}")
    if "mask" in out:
        mask = out["mask"]
        if mask.dtype != np.uint8 or mask.shape != out["image"].shape[:3] + (1,):
            raise ValueError(f"batch mask must be uint8 {out['image'].shape[:3] + (1,)}, got {mask.dtype} "
                             f"{mask.shape}")
        out["mask"] = mask.astype(np.float32)
    for key in _INT_KEYS:
        if key in out:
            out[key] = out[key].astype(np.int32)
    return out


def to_device_inputs(batch: dict[str, Any]) -> dict[str, np.ndarray]:
    """uint8 batch from a source -> the same with integer labels as int32; image and mask stay uint8 (the
    training steps convert them on the device, ``mantra_jax.train.step.device_inputs``)."""
    out = {k: np.asarray(v) for k, v in batch.items()}
    for key in ("image", "mask"):
        if key in out and out[key].dtype != np.uint8:
            raise ValueError(f"batch {key} must be uint8, got {out[key].dtype}")
    for key in _INT_KEYS:
        if key in out:
            out[key] = out[key].astype(np.int32)
    return out


def _ensure_absl_flags_parsed() -> None:
    """grain's worker processes read absl flags; outside ``absl.app.run`` they are not parsed yet."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class _ProcessPart:
    """Record ``i`` of process ``index``'s stream: the parent's record at the same place of its part of
    global batch ``i // local`` (picklable for grain workers)."""

    def __init__(self, parent: Any, global_batch: int, index: int, count: int):
        self.parent, self.global_batch, self.local = parent, global_batch, global_batch // count
        self.offset = index * self.local

    def __call__(self, i: int) -> Any:
        k, j = divmod(int(i), self.local)
        return self.parent[k * self.global_batch + self.offset + j]


def make_loader(source: Any, *, batch_size: int, seed: int, shuffle: bool = True, num_epochs: int | None = 1,
                worker_count: int = 0, drop_remainder: bool = True, read_threads: int = 1,
                prefetch: int = 2, worker_buffer_size: int = 2, device_preprocess: bool = False,
                process_index: int = 0, process_count: int = 1):
    """A grain ``IterDataset`` of model-input batches from a random-access ``source``.

    Args:
      source: ``len()`` and ``[i]`` returning dicts of numpy arrays (IMCSource, ForgerySource, a tfds
        array_record source, ...). Must pickle when ``worker_count > 0``.
      batch_size: records per (global) batch.
      seed: shuffle seed (the records' own randomness is the source's seed).
      shuffle: shuffle records (reshuffled each epoch).
      num_epochs: passes over the source; None repeats forever.
      worker_count: 0 computes batches in this process (``read_threads`` threads); N > 0 uses N processes.
      drop_remainder: drop a last incomplete batch.
      read_threads, prefetch: threads and batches in flight per process. worker_buffer_size: batches
        buffered per worker process.
      device_preprocess: ship uint8 images and masks (``to_device_inputs``) for conversion on the device
        instead of float32 model inputs.
      process_index, process_count: this process's place; it yields batches of batch_size / process_count
        records, its part of each global batch (see the module docstring).
    """
    import grain  # Local import: grain imports JAX, which the rest of mantra_jax.data does not need.

    if batch_size < 1 or worker_count < 0 or read_threads < 0 or prefetch < 0 or worker_buffer_size < 1:
        raise ValueError(f"bad loader settings: batch_size={batch_size}, worker_count={worker_count}, "
                         f"read_threads={read_threads}, prefetch={prefetch}, worker_buffer_size={worker_buffer_size}")
    if not 0 <= process_index < process_count:
        raise ValueError(f"process index {process_index} is not in [0, {process_count})")
    if batch_size % process_count or (process_count > 1 and not drop_remainder):
        raise ValueError(f"a global batch of {batch_size} does not split over {process_count} processes "
                         f"(it must divide evenly, and incomplete batches be dropped)")
    if num_epochs is not None and num_epochs < 1:
        raise ValueError(f"num_epochs must be positive or None, got {num_epochs}")
    if len(source) < 1:
        raise ValueError("source is empty")
    dataset = grain.MapDataset.source(source)
    if shuffle:
        dataset = dataset.shuffle(seed=int(seed))
    if num_epochs != 1:
        dataset = dataset.repeat(num_epochs)
    if process_count > 1:
        local = batch_size // process_count
        dataset = grain.MapDataset.range((len(dataset) // batch_size) * local).map(
            _ProcessPart(dataset, batch_size, process_index, process_count))
        batch_size = local
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    iterable = dataset.to_iter_dataset(grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch))
    if worker_count > 0:
        _ensure_absl_flags_parsed()
        iterable = iterable.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count,
                                                                     per_worker_buffer_size=worker_buffer_size))
    # Converted in this process: workers ship uint8 batches, 4x less than float32 through shared memory.
    return iterable.map(to_device_inputs if device_preprocess else to_model_inputs)
