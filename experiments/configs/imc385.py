"""IMC-385 pre-training configs: ``paper`` and ``cpu`` (the default).

paper: the paper's settings (Sec. 2.3 / ARCHITECTURE.md section 4): Ptrain4 network, batch 64, 1000
batches per epoch, 128x128 random crops of 256x256 patches, Adam 1e-4 halved after 20 epochs without
validation improvement. The paper does not state the number of epochs; 200 is our choice.

cpu: a smoke run that finishes on 2 CPU cores in under 10 minutes with a clearly falling loss. Only this
config uses the ``tiny`` variant (a trunk 16..64 filters wide instead of 32..256, ~1/16 of the compute;
see mantra_jax/models/variants.py), 32x32 crops, batch 16, 500 steps and a 10x learning rate (1e-3).
It also adds the coarse hierarchy levels' cross-entropies to the loss (``hierarchy_weight`` 1; the
paper's loss is the plain 385-way cross-entropy, weight 0): with the plain loss the 385-way
cross-entropy stays at its chance value ln 385 = 5.95 for the first few hundred steps (measured: 5.99
after 200 steps), because the within-family confusions drown the family signal; with it, the leaf
cross-entropy (``ce`` in the validation metrics) falls within minutes.

    python experiments/imc385.py --workdir=/tmp/imc385_cpu
    python experiments/imc385.py --config=experiments/configs/imc385.py:paper --workdir=... \
        --config.data.photos=/path/to/photos
"""

from __future__ import annotations

import ml_collections

from experiments.configs.blocks import base_config, data_block, model_block, train_block
from mantra_jax.data.imc_source import CROP_SIZE
from mantra_jax.data.patches import PATCH_SIZE


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c, arg = base_config("imc385", arg)
    # hierarchy_level (HL0..HL5) or num_classes (7 / 25 / 49 / 96 / 185 / 385): either sets the other;
    # neither: HL5, the catalogue's len(CATALOGUE) = 385 classes (mantra_jax.train.hierarchy_levels)
    placeholder = ml_collections.config_dict.placeholder
    c.model = model_block("ptrain4", num_classes=placeholder(int), hierarchy_level=placeholder(str))
    if arg == "paper":
        c.data = data_block(patch_size=PATCH_SIZE, crop_size=CROP_SIZE, val_records=6400)
        c.data.worker_count = 8
        c.train = train_block(batch_size=64, steps_per_epoch=1000, num_epochs=200)
        c.train.hierarchy_weight = 0.0  # the paper's plain 385-way cross-entropy
    else:
        c.model.variant = "tiny"
        c.data = data_block(patch_size=PATCH_SIZE, crop_size=32, val_records=128)
        c.train = train_block(batch_size=16, steps_per_epoch=50, num_epochs=10, learning_rate=1e-3,
                              log_every_steps=10)
        c.train.hierarchy_weight = 1.0
    # the fixed validation (and test) set, prepared once by mantra_jax.datasets.imc385 and read from there;
    # relative to --workdir (an absolute folder lets runs share it: its name carries what it holds)
    c.data.val_dir = "fixed_sets"
    return c
