"""Building blocks of the experiment configs: data, training, model and distribution settings as
ml_collections ConfigDicts with the paper's defaults. Each default lives here once (the training loop's
in ``mantra_jax.train.loop.LoopConfig``, the plateau rule's in ``mantra_jax.train.plateau``, the number of
classes in the catalogue) and the runners read the fields directly."""

from __future__ import annotations

import ml_collections

from mantra_jax.data.patches import MIN_DEVIATION
from mantra_jax.models.compute import CHOICES, Compute
from mantra_jax.train.optimizer import PAPER_LEARNING_RATE


def data_block(*, patch_size: int, val_records: int, crop_size: int | None = None) -> ml_collections.ConfigDict:
    """Input settings (mantra_jax.train.inputs). photos: a folder of pristine photos (recursive); empty
    uses scikit-image's bundled photos (smoke runs only)."""
    d = ml_collections.ConfigDict()
    d.photos = ""
    d.patch_size = patch_size
    if crop_size is not None:
        d.crop_size = crop_size
    d.min_deviation = MIN_DEVIATION
    d.seed = 0  # record seed of the training samples
    d.val_seed = 1  # record seed of the fixed validation set
    d.val_records = val_records
    d.shuffle_seed = 0
    d.worker_count = 0  # 0: batches made in this process (read_threads threads)
    d.read_threads = 1
    d.prefetch = 2
    return d


def train_block(*, batch_size: int, steps_per_epoch: int, num_epochs: int | None,
                learning_rate: float = PAPER_LEARNING_RATE,
                checkpoint_every_steps: int | None = None, log_every_steps: int = 50) -> ml_collections.ConfigDict:
    """Loop and optimiser settings; the paper's defaults. The loop fields are those of
    mantra_jax.train.loop.LoopConfig (read by ``LoopConfig.from_config``), at its defaults
    (``LoopConfig.defaults``) but for the ones set here. ``num_epochs`` None: a block without epochs (its
    ``num_steps`` must then be set)."""
    from mantra_jax.train.loop import LoopConfig

    t = ml_collections.ConfigDict()
    t.batch_size = batch_size  # global batch, split over all devices
    t.learning_rate = learning_rate
    t.steps_per_epoch = steps_per_epoch
    if num_epochs is not None:
        t.num_epochs = num_epochs
    # num_steps: total train steps (0: num_epochs * steps_per_epoch); patience: evaluations without
    # validation improvement before the learning rate is halved (factor); budget_s: wall-clock budget of the
    # run in seconds (0: none), checkpoint and stop when spent; memory_limit_bytes: device memory the
    # preflight fits the step into (0: the device's own); micro_batches: gradient accumulation (>= 1), the
    # preflight raises it when a step does not fit; checkpoints: write Orbax checkpoints
    t.update(LoopConfig.defaults())
    t.checkpoint_every_steps = checkpoint_every_steps or steps_per_epoch
    t.log_every_steps = log_every_steps
    return t


def model_block(variant: str, **fields) -> ml_collections.ConfigDict:
    """Model settings: ``variant`` (mantra_jax.models.variants), ``dtype`` (computation dtype of the trunk
    convolutions: float32 or bfloat16; parameters, batch norm, LADN and losses stay float32), ``fields``,
    and the run settings ``kernel_grad`` / ``conv_algorithm`` (how the trunk computes, not what: the
    fields of mantra_jax.models.compute.Compute, its defaults; not part of the checkpoint's model config)."""
    policy = Compute()
    return ml_collections.ConfigDict({"variant": variant, "dtype": "float32", **fields,
                                      **{k: getattr(policy, k) for k in CHOICES}})


def distributed_block() -> ml_collections.ConfigDict:
    """Multi-host: initialize=True calls jax.distributed.initialize (empty / 0 / -1: detected by JAX)."""
    d = ml_collections.ConfigDict()
    d.initialize = False
    d.coordinator_address = ""
    d.num_processes = 0
    d.process_id = -1
    return d


PRESETS = ("cpu", "paper")


def base_config(experiment: str, arg: str | None,
                presets: tuple[str, ...] = PRESETS) -> tuple[ml_collections.ConfigDict, str]:
    """``(config, preset)``: a config holding ``name`` (``<experiment>-<preset>``), ``progress`` and
    ``distributed``, for the preset ``arg`` (one of ``presets``; the first when empty: ``cpu`` of
    ``cpu`` and ``paper``)."""
    preset = arg or presets[0]
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r} of the {experiment} config; use one of {presets}")
    c = ml_collections.ConfigDict()
    c.name = f"{experiment}-{preset}"
    c.progress = True
    c.distributed = distributed_block()
    return c, preset
