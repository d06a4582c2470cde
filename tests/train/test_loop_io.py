"""The loop's wall-clock budget and its log lines off a terminal (toy model: compiles in about a second)."""

import numpy as np

from mantra_jax.train.loop import LoopConfig, fit
from mantra_jax.train.optimizer import adam
from mantra_jax.train.tasks import localisation_task

from tests.train.conftest import mask_batch
from tests.train.test_loop_record import SUMMARY_KEYS, TIMING_KEYS


def _fit(toy_model, tmp_path, **config):
    data = [mask_batch(i, b=4) for i in range(4)]
    cfg = LoopConfig(**{"num_steps": 12, "steps_per_epoch": 100, "log_every_steps": 3, "progress": True, **config})
    return fit(model=toy_model, model_config={"kind": "toy"}, task=localisation_task(), tx=adam(),
               train_data=data * 10, eval_data=data[:1], workdir=tmp_path, config=cfg)


def test_off_a_terminal_the_loop_prints_one_line_per_log_interval(toy_model, tmp_path, capsys):
    _fit(toy_model, tmp_path, checkpoints=False)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("train: step")]
    assert [line.split()[2] for line in lines] == ["3/12", "6/12", "9/12", "12/12"]
    assert "\r" not in err


def test_budget_ends_the_run_with_a_checkpoint_and_a_summary(toy_model, tmp_path):
    from mantra_jax.train.checkpoints import TrainCheckpoints

    state, summary = _fit(toy_model, tmp_path, budget_s=1e-3, progress=False)
    assert summary["stopped"] == "budget" and summary["steps"] == 1  # the budget was spent by the compile
    assert np.isfinite(summary["val"]["loss"])
    assert TrainCheckpoints(tmp_path).latest_step() == 1
    assert (tmp_path / "summary.json").exists()
    t = summary["timing"]
    assert t["compile_s"] > 0 and t["samples"] == 4 and 0 <= t["input_wait_share"] <= 1


def test_a_non_finite_loss_stops_the_run_naming_the_step_and_keeps_the_last_finite_checkpoint(toy_model, tmp_path):
    import jax
    import pytest

    from mantra_jax.errors import TrainingDivergedError
    from mantra_jax.io.orbax_layout import restore_inference_variables
    from mantra_jax.train.checkpoints import TrainCheckpoints

    data = [mask_batch(i, b=4) for i in range(12)]
    for batch in data[6:]:  # step 7 on: the input, hence the loss, is NaN
        batch["image"][:] = np.nan
    cfg = LoopConfig(num_steps=12, steps_per_epoch=100, log_every_steps=3, checkpoint_every_steps=2,
                     progress=False)
    with pytest.raises(TrainingDivergedError, match=r"loss is nan at step 7; .*step 6\) is kept") as e:
        fit(model=toy_model, model_config={"kind": "toy"}, task=localisation_task(), tx=adam(),
            train_data=data, eval_data=data[:1], workdir=tmp_path, config=cfg)
    assert "\n" not in str(e.value)
    assert TrainCheckpoints(tmp_path).latest_step() == 6
    _, variables = restore_inference_variables(tmp_path / "checkpoints")
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(variables))
    assert not (tmp_path / "summary.json").exists()


def test_the_summary_json_holds_the_run_summary_s_fields(toy_model, tmp_path):
    import json

    _fit(toy_model, tmp_path, num_steps=3, progress=False)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert sorted(written) == sorted(SUMMARY_KEYS) and sorted(written["timing"]) == sorted(TIMING_KEYS)
