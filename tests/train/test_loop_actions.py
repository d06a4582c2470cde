"""The loop's periodic actions run in their order (toy model: compiles in about a second)."""

import jax

from mantra_jax.train.loop import LoopConfig, TrainLoop, fit
from mantra_jax.train.loop_actions import ACTIONS, evaluate_variables
from mantra_jax.train.optimizer import adam
from mantra_jax.train.tasks import localisation_task

from tests.train.conftest import mask_batch

ORDER = ["check_finite", "log", "evaluate", "checkpoint", "prefetch", "progress", "budget"]


class _Recorded:
    """An action that notes ``(step, name)`` in ``seen`` each time it runs."""

    def __init__(self, action, seen):
        self.action, self.seen, self.name = action, seen, action.name

    def due(self, loop, tick):
        return self.action.due(loop, tick)

    def run(self, loop, tick):
        self.seen.append((tick.step, self.name))
        self.action.run(loop, tick)


def test_the_actions_are_in_the_loop_s_order():
    assert [a.name for a in ACTIONS] == ORDER


def test_a_step_with_evaluation_and_checkpoint_due_evaluates_first_and_prefetches_last(toy_model, tmp_path):
    data = [mask_batch(i, b=4) for i in range(4)]
    cfg = LoopConfig(num_steps=3, steps_per_epoch=2, checkpoint_every_steps=2, log_every_steps=5, progress=False)
    seen = []
    TrainLoop(model=toy_model, model_config={"kind": "toy"}, task=localisation_task(), tx=adam(),
              train_data=data, eval_data=data[:1], workdir=tmp_path, config=cfg,
              actions=[_Recorded(a, seen) for a in ACTIONS])()
    assert [name for step, name in seen if step == 1] == ["prefetch", "progress"]
    assert [name for step, name in seen if step == 2] == ["check_finite", "evaluate", "checkpoint", "prefetch",
                                                          "progress"]
    assert [name for step, name in seen if step == 3] == ["check_finite", "log", "evaluate", "checkpoint",
                                                          "progress"]


def test_variables_evaluated_outside_a_run_score_as_the_run_s_validation(toy_model, tmp_path):
    data = [mask_batch(i, b=4) for i in range(3)]
    cfg = LoopConfig(num_steps=2, steps_per_epoch=2, log_every_steps=2, progress=False, checkpoints=False)
    state, summary = fit(model=toy_model, model_config={"kind": "toy"}, task=localisation_task(), tx=adam(1e-2),
                         train_data=data, eval_data=data[1:], workdir=tmp_path, config=cfg)
    variables = jax.device_get({"params": state.params, "batch_stats": state.batch_stats})
    scored = evaluate_variables(toy_model, variables, localisation_task(), data[1:])
    assert scored == {k: v for k, v in summary["val"].items() if k != "lr_scale"}
