"""Configs of experiments/imc_studies.py (the paper's Tables 2-5): ``cpu`` (the default) and ``paper``.

The ``data`` and ``train`` blocks are those of experiments/configs/imc385.py (blocks.py; ``train`` holds the
loop's fields, read by ``LoopConfig.from_config``): each column is an imc385 run with them
(experiments/studies.py ``column_config``).

paper: full widths, the paper's IMC inputs (128x128 crops of 256x256 patches, batch 64, Adam 1e-4, the
plain cross-entropy) and a budget of 100 epochs of 1000 batches per column, evaluated after each (the
paper trains to its validation plateau; 100 epochs is our choice), validation on 6400 records, "Train Acc." on 6400
training-split records, the camera-model probe at 512 x 512 on ``cameras.folder`` (set it to a KCMI-like
folder: one sub-folder per camera, or a flat folder with ``cameras.pattern``).

cpu: the same tables at 1/4 of every width, 32x32 crops of 64x64 patches, batch 8, 60 steps per column
(one epoch, evaluated at its end) at 1e-3 with the coarse-level cross-entropies added (``hierarchy_weight``
1, as experiments/configs/imc385.py ``cpu``), 64 validation / 64 training records, and the probe on the 16 photos of
../shared/data/pristine/dresden_nat (3 Nikon models; 128 x 128 centres) when present. Numbers of such a
run say that the pipeline works, not what the paper measured.
"""

from __future__ import annotations

import os
import pathlib

import ml_collections

from experiments.configs.blocks import base_config, data_block, train_block
from mantra_jax.eval import camera_probe

DRESDEN_PATTERN = r"^(.+?)_\d+_\d+\."


def _shared() -> pathlib.Path:
    return pathlib.Path(os.environ.get("MANTRA_SHARED") or pathlib.Path(__file__).resolve().parents[2] / ".." / "shared")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c, arg = base_config("imc_studies", arg)
    c.study = "backbone"  # backbone | first_layer | hierarchy | width_depth (the script's --study sets it)
    c.only = ""  # comma-separated column labels to run (empty: all)
    cams = ml_collections.ConfigDict({"folder": "", "pattern": "", "crop": camera_probe.CENTRE,
                                      "k": camera_probe.K, "seed": 0})
    # train: every column's imc385 train block (one epoch = one evaluation period; checkpoints at each)
    if arg == "paper":
        c.width_divisor = 1
        c.data = data_block(patch_size=256, crop_size=128, val_records=6400)
        c.data.worker_count = 8
        c.train = train_block(batch_size=64, steps_per_epoch=1000, num_epochs=100)
        c.train.hierarchy_weight = 0.0
        c.train_records = 6400
    else:
        c.width_divisor = 4
        c.data = data_block(patch_size=64, crop_size=32, val_records=64)
        c.train = train_block(batch_size=8, steps_per_epoch=60, num_epochs=1, learning_rate=1e-3,
                              log_every_steps=20)  # evaluated once, at the end
        c.train.hierarchy_weight = 1.0
        c.train_records = 64
        dresden = _shared() / "data" / "pristine" / "dresden_nat"
        if dresden.is_dir():
            cams.folder, cams.pattern = str(dresden.resolve()), DRESDEN_PATTERN
        cams.crop = 128
    # the fixed validation set of every column, relative to the study's folder (WORKDIR/<study>)
    c.data.val_dir = "fixed_sets"
    c.cameras = cams
    return c
