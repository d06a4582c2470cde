"""Input streams of the experiments, built on ``mantra_jax.data``: IMC samples and synthetic forgeries.

Each builder returns ``(train, validation)`` grain datasets of this process's share of the global batch:

* train: ``make_loader(..., num_epochs=None)`` over the training split, shuffled, repeating forever; its
  iterator state is saved with every checkpoint;
* validation: a fixed set (``val_records`` records of the validation split, drawn with ``val_seed``), not
  shuffled, one pass; iterated from the start at every evaluation. ``imc_inputs(..., val_dir=D)`` reads
  it from the fixed IMC-385 builder prepared in ``D`` (``mantra_jax.datasets.imc385``: synthesised once,
  then the same bytes on every machine and library version) instead of synthesising it at each run.

With several processes each reads its consecutive part of every global batch (``make_loader``'s
``process_index`` / ``process_count``): the global batches hold the same records as with one process. Every setting is read from ``data`` (the config's data block, experiments/configs/blocks.py). Batches are
left uint8 (``device_preprocess``): the train and eval steps convert them on the device. Photos:
``data.photos`` (a folder, searched recursively) or, when
empty, scikit-image's bundled photos (fine for smoke runs; far too few for real training).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax


def _photos(data: Mapping[str, Any]) -> Any:
    photos = data["photos"]
    return photos if photos else None


def _loaders(train_source: Any, val_source: Any, data: Mapping[str, Any], global_batch_size: int) -> tuple[Any, Any]:
    from mantra_jax.data.pipeline import make_loader

    if global_batch_size % jax.process_count():
        raise ValueError(f"batch size {global_batch_size} does not split over {jax.process_count()} processes")
    if len(val_source) < global_batch_size:
        raise ValueError(f"validation set of {len(val_source)} records is smaller than one batch ({global_batch_size})")
    options = dict(worker_count=int(data["worker_count"]), read_threads=int(data["read_threads"]),
                   prefetch=int(data["prefetch"]), batch_size=global_batch_size, device_preprocess=True,
                   process_index=jax.process_index(), process_count=jax.process_count())
    train = make_loader(train_source, seed=int(data["shuffle_seed"]), num_epochs=None, **options)
    val = make_loader(val_source, seed=0, shuffle=False, num_epochs=1, **options)
    return train, val


def _banks(data: Mapping[str, Any], patch_size: int) -> tuple[Any, Any]:
    from mantra_jax.data.patches import PatchBank

    kwargs = dict(size=int(patch_size), min_deviation=float(data["min_deviation"]))
    photos = _photos(data)
    return PatchBank.build(photos, "train", **kwargs), PatchBank.build(photos, "validation", **kwargs)


class _Fields:
    """The records of a random-access source restricted to ``keys`` (picklable for grain workers)."""

    def __init__(self, source: Any, keys: tuple[str, ...]):
        self.source, self.keys = source, keys

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict[str, Any]:
        record = self.source[i]
        return {k: record[k] for k in self.keys}


def imc_inputs(data: Mapping[str, Any], global_batch_size: int,
               val_dir: str | os.PathLike | None = None) -> tuple[Any, Any]:
    """IMC-385 train / validation streams. ``data`` keys: photos, patch_size (256), crop_size (128), seed,
    val_seed, val_records, shuffle_seed, min_deviation, worker_count, read_threads, prefetch.

    ``val_dir``: a folder of prepared fixed IMC-385 sets (``mantra_jax.datasets.imc385``); the validation
    set is read from there, prepared on first use (its validation and test splits, ``val_records`` each,
    seed ``val_seed``: the records the synthesis would give). None: synthesised at each run. With several
    processes, prepare it once beforehand (``prepare_imc385``), so that they do not write it together.
    """
    from mantra_jax.data.imc_source import IMCSource

    train_bank, val_bank = _banks(data, data["patch_size"])
    crop = int(data["crop_size"])
    train = IMCSource(train_bank, "train", seed=int(data["seed"]), crop_size=crop)
    if val_dir is None:
        val = IMCSource(val_bank, "validation", seed=int(data["val_seed"]),
                        num_records=int(data["val_records"]), crop_size=crop)
    else:
        from mantra_jax.datasets.imc385 import imc385_config, imc385_source, prepare_imc385

        n = int(data["val_records"])
        config = imc385_config(_photos(data), validation_samples=n, test_samples=n, seed=int(data["val_seed"]),
                               crop_size=crop, patch_size=int(data["patch_size"]),
                               min_deviation=float(data["min_deviation"]))
        path = prepare_imc385(_photos(data), val_dir, config)
        val = _Fields(imc385_source(path, "validation"), ("image", "label"))
    return _loaders(train, val, data, global_batch_size)


def forgery_inputs(data: Mapping[str, Any], global_batch_size: int) -> tuple[Any, Any]:
    """Forgery train / validation streams (``mantra_jax.data.ForgerySource``). ``data`` keys: photos,
    patch_size (256), seed, val_seed, val_records, shuffle_seed, min_deviation, worker_count, read_threads,
    prefetch, and optionally mix and area."""
    from mantra_jax.data.forgery_source import ForgerySource

    train_bank, val_bank = _banks(data, data["patch_size"])
    extra = {k: tuple(data[k]) for k in ("mix", "area") if data.get(k)}
    train = ForgerySource(train_bank, "train", seed=int(data["seed"]), **extra)
    val = ForgerySource(val_bank, "validation", seed=int(data["val_seed"]),
                        num_records=int(data["val_records"]), **extra)
    return _loaders(train, val, data, global_batch_size)
