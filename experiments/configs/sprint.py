"""The sprint's configs (experiments/sprint.py): ``ptrain4`` (the default) and ``tiny``.

Blocks (experiments/configs/blocks.py): ``model`` (one for both phases: the IMC classifier's level /
class count and the ManTra-Net's anomaly feature / windows, empty for the defaults, as in imc385.py and
ladn.py), and per phase a ``data`` and a ``train`` block: ``imc`` (IMC-385 pre-training, hierarchy-level
losses) and ``hr`` (end-to-end localisation in the HR setting). Each phase's ``train.num_steps`` caps its
steps per window (checks; the budget ends a real sprint first), its ``train.steps_per_epoch`` is the
evaluation period, and its ``train.budget_s`` is set by the sprint from ``--budget_s``. ``photos``: the
pristine photo folder of both phases (one field shared by both data blocks: ``--config.photos=DIR``
sets both, and so does setting either block's).
``imc_share``: the share of the training time spent in IMC; ``export_reserve``: the share of ``--budget_s``
kept for the final evaluations and the export. ``model.dtype``: the trunk convolutions' dtype on
accelerators (a CPU sprint computes float32).

ptrain4: the release model, batch 64, 128^2 IMC crops of 256^2 patches and 256^2 HR patches, 12 input
workers, bf16 trunk on accelerators. tiny: the 2-core CPU smoke run: the tiny model, 32^2 crops / 64^2
patches, evaluations only at the phase ends.

Both: Adam 1e-3 (IMC and LADN) and 1e-4 for the feature extractor in HR, hierarchy weight 1 (see the
sprint's docstring for the evidence).
"""

from __future__ import annotations

import ml_collections

from experiments.configs.blocks import base_config, data_block, model_block, train_block

PRESETS = ("ptrain4", "tiny")
UNTIL_THE_BUDGET = 10**9  # steps: more than any window takes before its budget is spent


def _train(batch_size: int, eval_every: int, log_every: int) -> ml_collections.ConfigDict:
    t = train_block(batch_size=batch_size, steps_per_epoch=eval_every, num_epochs=None, learning_rate=1e-3,
                    checkpoint_every_steps=UNTIL_THE_BUDGET, log_every_steps=log_every)
    t.num_steps = UNTIL_THE_BUDGET
    t.checkpoints = False  # the sprint exports at its end (experiments/sprint.py), no Orbax checkpoints
    return t


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c, arg = base_config("sprint", arg, PRESETS)
    del c.distributed  # one process
    tiny = arg == "tiny"
    placeholder = ml_collections.config_dict.placeholder
    c.model = model_block(arg, dtype="bfloat16", num_classes=placeholder(int), hierarchy_level=placeholder(str),
                          anomaly_feature=placeholder(str), windows=())
    c.imc_share = 0.35
    c.export_reserve = 0.08
    c.photos = ml_collections.FieldReference("")
    eval_every, log_every = (10**9, 5) if tiny else (1000, 50)
    c.imc = ml_collections.ConfigDict()
    c.imc.data = data_block(patch_size=256, crop_size=32 if tiny else 128, val_records=32 if tiny else 640)
    c.imc.train = _train(8 if tiny else 64, eval_every, log_every)
    c.imc.train.hierarchy_weight = 1.0
    c.hr = ml_collections.ConfigDict()
    c.hr.data = data_block(patch_size=64 if tiny else 256, val_records=8 if tiny else 128)
    c.hr.train = _train(4 if tiny else 64, eval_every, log_every)
    c.hr.train.featex_learning_rate = 1e-4
    for phase, seed in ((c.imc, 0), (c.hr, 1)):  # the phases' record seeds; validation sets 1 and 2
        phase.data.photos = c.get_ref("photos")
        phase.data.worker_count = 0 if tiny else 12
        phase.data.seed = phase.data.shuffle_seed = seed
        phase.data.val_seed = seed + 1
    return c
