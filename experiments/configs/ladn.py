"""End-to-end localisation configs (experiments/ladn.py): ``paper`` and ``cpu`` (the default).

paper: Ptrain4 network, 256x256 forged patches, batch 64, 1000 batches per epoch, Adam 1e-4 (the feature
extractor at 5e-5 in HR), halved after 20 epochs without validation improvement; 200 epochs (the paper
does not say; our choice).

cpu: a smoke run on 2 CPU cores: the ``tiny`` variant, 64x64 patches, batch 4, 3 x 20 steps, learning rate
1e-3 (1e-4 for the feature extractor in HR).

setting: FR (all random), HF (feature extractor from --config.imc_checkpoint, frozen) or HR (loaded, trained
at featex_learning_rate). imc_checkpoint: an IMC-385 work directory or any checkpoint load_model reads.
"""

from __future__ import annotations

import ml_collections

from experiments.configs.blocks import base_config, data_block, model_block, train_block
from mantra_jax.data.patches import PATCH_SIZE
from mantra_jax.models.ladn import RELEASE_WINDOWS
from mantra_jax.train.end_to_end import PAPER_FEATEX_LEARNING_RATE


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c, arg = base_config("ladn", arg)
    c.setting = "FR"
    c.imc_checkpoint = ""
    c.model = model_block("ptrain4", anomaly_feature="time_z", windows=RELEASE_WINDOWS)  # a tuple: settable by flag
    if arg == "paper":
        c.data = data_block(patch_size=PATCH_SIZE, val_records=3200)
        c.data.worker_count = 8
        c.train = train_block(batch_size=64, steps_per_epoch=1000, num_epochs=200)
        c.train.featex_learning_rate = PAPER_FEATEX_LEARNING_RATE
    else:
        c.model.variant = "tiny"
        c.data = data_block(patch_size=64, val_records=16)
        c.train = train_block(batch_size=4, steps_per_epoch=20, num_epochs=3, learning_rate=1e-3,
                              log_every_steps=5)
        c.train.featex_learning_rate = 1e-4
    return c
