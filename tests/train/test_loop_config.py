"""LoopConfig.from_config: every loop setting read from an experiment config's ``train`` block."""

import dataclasses

import pytest

from experiments.configs.blocks import train_block
from mantra_jax.train.loop import LoopConfig


def _block(**fields):
    t = train_block(batch_size=2, steps_per_epoch=4, num_epochs=3)
    t.update(fields)
    return t


def test_every_loop_field_but_progress_has_a_train_block_key():
    names = {f.name for f in dataclasses.fields(LoopConfig)} - {"progress"}
    assert names <= set(_block()) and set(LoopConfig.defaults()) == names - {"steps_per_epoch"}


@pytest.mark.parametrize("name", sorted(set(LoopConfig.defaults()) | {"steps_per_epoch"}))
def test_a_changed_block_value_reaches_the_loop_config(name):
    field = {f.name: f for f in dataclasses.fields(LoopConfig)}[name]
    before = getattr(LoopConfig.from_config(_block()), name)
    changed = {"bool": lambda v: not v, "int": lambda v: v + 7, "float": lambda v: v + 0.5}[field.type](before)
    config = LoopConfig.from_config(_block(**{name: changed}), progress=False)
    assert getattr(config, name) == changed and type(getattr(config, name)).__name__ == field.type
    assert config.progress is False


def test_num_steps_zero_is_num_epochs_times_steps_per_epoch():
    assert LoopConfig.from_config(_block()).num_steps == 12
    assert LoopConfig.from_config(_block(num_steps=5)).num_steps == 5


def test_a_block_without_a_loop_key_raises():
    block = _block().to_dict()
    del block["keep_best"]
    with pytest.raises(KeyError, match="keep_best"):
        LoopConfig.from_config(block)


def test_zero_steps_without_epochs_is_the_loops_one_line_error():
    # a study's or the sprint's block has no num_epochs: 0 steps stays 0 and the loop refuses it by name
    block = {**LoopConfig.defaults(), "steps_per_epoch": 4}
    with pytest.raises(ValueError, match="LoopConfig.num_steps must be >= 1, got 0"):
        LoopConfig.from_config(block)
