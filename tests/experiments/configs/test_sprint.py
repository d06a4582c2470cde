"""experiments/configs/sprint.py: the presets hold the settings the sprint ran with before it had a config
(its ``Plan`` / ``VARIANTS``, ``IMC_SHARE``, ``EXPORT_RESERVE`` and data seeds, as literals here)."""

import pytest

from experiments.configs.sprint import get_config

# (model, imc_crop, imc_batch, imc_val, hr_patch, hr_batch, hr_val, log_every, eval_every, workers)
_PLANS = {"ptrain4": ("ptrain4", 128, 64, 640, 256, 64, 128, 50, 1000, 12),
          "tiny": ("tiny", 32, 8, 32, 64, 4, 8, 5, 10**9, 0)}


@pytest.mark.parametrize("preset", sorted(_PLANS))
def test_preset_holds_the_plan_of_its_variant(preset):
    c = get_config(preset)
    imc, hr = c.imc, c.hr
    got = (c.model.variant, imc.data.crop_size, imc.train.batch_size, imc.data.val_records, hr.data.patch_size,
           hr.train.batch_size, hr.data.val_records, imc.train.log_every_steps, imc.train.steps_per_epoch,
           imc.data.worker_count)
    assert got == _PLANS[preset]
    assert (hr.train.log_every_steps, hr.train.steps_per_epoch, hr.data.worker_count) == got[7:]
    assert imc.data.patch_size == 256  # the crops' source patches
    assert (imc.train.learning_rate, hr.train.learning_rate, hr.train.featex_learning_rate) == (1e-3, 1e-3, 1e-4)
    assert imc.train.hierarchy_weight == 1.0 and c.model.dtype == "bfloat16"  # on accelerators
    assert (c.imc_share, c.export_reserve) == (0.35, 0.08)


@pytest.mark.parametrize("preset", sorted(_PLANS))
def test_preset_runs_until_the_budget_without_checkpoints_and_the_old_seeds(preset):
    c = get_config(preset)
    for phase in (c.imc, c.hr):
        assert (phase.train.num_steps, phase.train.checkpoint_every_steps, phase.train.checkpoints) == (
            10**9, 10**9, False)
        assert "num_epochs" not in phase.train
    seeds = lambda d: (d.seed, d.val_seed, d.shuffle_seed)  # noqa: E731
    assert (seeds(c.imc.data), seeds(c.hr.data)) == ((0, 1, 0), (1, 2, 1))


def test_ptrain4_is_the_default_preset():
    assert get_config().name == "sprint-ptrain4" and get_config("tiny").name == "sprint-tiny"
    with pytest.raises(ValueError, match="unknown preset"):
        get_config("cpu")


def test_photos_is_one_setting_for_both_phases():
    c = get_config("tiny")
    c.photos = "/photos"
    assert c.imc.data.photos == c.hr.data.photos == "/photos"


@pytest.mark.parametrize("phase", ["imc", "hr"])
def test_each_phase_train_block_is_read_by_the_loop_config(phase):
    from mantra_jax.train.loop import LoopConfig

    train = getattr(get_config("tiny"), phase).train
    assert set(LoopConfig.defaults()) | {"steps_per_epoch"} <= set(train)  # a new loop field arrives here too
    train.patience = 3  # any loop field, set by --config.<phase>.train.<field>
    loop = LoopConfig.from_config(train, progress=False)
    assert (loop.patience, loop.num_steps, loop.checkpoints) == (3, 10**9, False)
