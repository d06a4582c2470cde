"""The training loop's periodic actions, in the order they run after each train step (``ACTIONS``).

An action is ``due(loop, tick)`` (``tick``: the step just dispatched, whether it is the run's last, whether
the budget is spent) and then ``run(loop, tick)`` on the loop (``mantra_jax.train.loop.TrainLoop``). The
order is the loop's rules:

1. ``check_finite``: the losses since the last check are finite, before a state is logged, evaluated or saved;
2. ``log``: the train metrics of the interval (and the progress line's postfix);
3. ``evaluate``: validation, the plateau (epoch evaluations only), the best checkpoints; before
   ``checkpoint``, so that a periodic checkpoint holds the plateau state of its step's evaluation;
4. ``checkpoint``: the periodic checkpoint, with the loop record and the input iterator's state;
5. ``prefetch``: the next batch read and copied while the step runs; after ``evaluate`` and ``checkpoint``,
   so that a checkpoint's input state is exactly that of the steps done;
6. ``progress``: the bar (or line) advanced by one step;
7. ``budget``: the run ends when the budget is spent; last, as the step is then the run's last and its
   evaluation and checkpoint (due at a last step) have run.

The validation is ``evaluate`` with ``loop_eval_step``; ``evaluate_variables`` runs the same on any
variables (e.g. a best checkpoint scored after its run, experiments/studies.py), so a score outside a run
is computed by the code of the run's validation metrics.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import jax
import numpy as np
import optax

from mantra_jax.errors import TrainingDivergedError
from mantra_jax.models.compute import for_platform
from mantra_jax.train import sharding
from mantra_jax.train.feeder import DeviceFeeder
from mantra_jax.train.state import TrainState, create_train_state
from mantra_jax.train.step import make_eval_step
from mantra_jax.train.tasks import Task

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Tick:
    """The step just dispatched: step (1-based count of steps done), last (the run's last: the final step or
    the budget spent), over_budget, and post (the progress postfix the log action leaves, else None)."""

    step: int
    last: bool
    over_budget: bool
    post: dict[str, str] | None = None


def evaluate(eval_step: Callable, state: TrainState, eval_data: Iterable[Mapping[str, Any]], task: Task,
             mesh: Any) -> dict[str, float]:
    """Sums the task's validation sums over ``eval_data`` and summarises them. The per-batch sums stay on
    the device until the pass is over (one transfer), and batch k+1 is copied while batch k is evaluated."""
    feeder = DeviceFeeder(iter(eval_data), task.batch_keys, mesh)
    parts = []
    while True:
        try:
            batch = feeder.next()
        except StopIteration:
            break
        parts.append(eval_step(state, batch))
        try:
            feeder.prefetch()
        except StopIteration:
            break
    if not parts:
        raise ValueError("the validation data gave no batch")
    totals: dict[str, np.ndarray] = {}
    for sums in jax.device_get(parts):
        for k, v in sums.items():
            v = np.asarray(v, np.float64 if np.issubdtype(np.asarray(v).dtype, np.floating) else np.int64)
            totals[k] = totals[k] + v if k in totals else v
    return task.summarize(totals)


def loop_eval_step(model: Any, task: Task, mesh: Any) -> Callable:
    """The loop's eval step of ``model`` (already resolved for the mesh's platform): ``make_eval_step``
    jitted over ``mesh`` (state replicated, batch split on "data")."""
    return sharding.jit_eval_step(make_eval_step(model, task), mesh)


def evaluate_variables(model: Any, variables: Mapping[str, Any], task: Task,
                       eval_data: Iterable[Mapping[str, Any]], mesh: Any = None) -> dict[str, float]:
    """The task's validation metrics of ``variables`` (``{"params", "batch_stats"}``, e.g. a checkpoint's)
    over ``eval_data``, computed as a run's validation is: the model resolved for the platform, the loop's
    eval step and ``evaluate``. ``mesh``: default all devices."""
    mesh = sharding.make_mesh() if mesh is None else mesh
    model = for_platform(model, mesh.devices.flat[0].platform)
    state = sharding.replicate(create_train_state(dict(variables), optax.identity()), mesh)
    return evaluate(loop_eval_step(model, task, mesh), state, eval_data, task, mesh)


def stop_if_diverged(losses: Sequence[tuple[int, Any]], ckpt: Any) -> None:
    """Raises TrainingDivergedError naming the first step whose loss or gradient norm is NaN or infinite
    (one host sync). A finite loss and gradient give a finite update, so the state after it is finite."""
    host = jax.device_get([pair for _, pair in losses])
    for (step, _), (value, grad_norm) in zip(losses, host):
        if not (np.all(np.isfinite(value)) and np.all(np.isfinite(grad_norm))):
            latest = ckpt.latest_step() if ckpt is not None else None
            keep = (f"the last finite checkpoint (step {latest}) is kept and a rerun resumes from it"
                    if latest is not None else "no checkpoint was written")
            raise TrainingDivergedError(f"training diverged: the loss is {float(np.asarray(value).mean())} at "
                                        f"step {step}; stopped without evaluating or saving that state ({keep}); "
                                        f"lower the learning rate")


class Log:
    """Every ``log_every_steps`` steps and at the last: the interval's mean train loss and gradient norm, the
    learning-rate scale and steps per second to the metric writer; sets the record's train losses and the
    tick's progress postfix (with the latest validation loss, of an earlier step)."""

    name = "log"

    def due(self, loop: Any, tick: Tick) -> bool:
        return tick.step % loop.config.log_every_steps == 0 or tick.last

    def run(self, loop: Any, tick: Tick) -> None:
        host = jax.device_get(loop.window)
        t0 = time.perf_counter()
        n = len(host)
        mean = lambda key: float(np.mean([m[key] for m in host]))  # noqa: E731
        record = loop.record
        if record.first_train_loss is None:
            record.first_train_loss = float(host[0]["loss"])
        record.last_train_loss = mean("loss")
        elapsed = max(time.perf_counter() - (loop.t_steps if loop.window_start is None else loop.window_start),
                      1e-9)
        loop.writer.write(tick.step, "train", {"loss": record.last_train_loss, "grad_norm": mean("grad_norm"),
                                               "lr_scale": float(host[-1]["lr_scale"]), "steps_per_s": n / elapsed})
        loop.window = []
        tick.post = {"loss": f"{record.last_train_loss:.4f}"}
        if record.last_val:
            tick.post["val_loss"] = f"{record.last_val['loss']:.4f}"
        loop.timing.write_s += time.perf_counter() - t0
        loop.window_start = time.perf_counter()


class Evaluate:
    """Every ``eval_every_steps`` steps and at the last (always evaluated): validation over the eval data;
    the plateau rule updated with its loss (epoch evaluations only, not an extra one at the last step);
    the metrics (with the plateau's ``lr_scale``) to the writer and the record; the state offered to the
    best checkpoints. Runs before ``checkpoint``: a periodic checkpoint holds this plateau state."""

    name = "evaluate"

    def due(self, loop: Any, tick: Tick) -> bool:
        return tick.step % loop.config.eval_every_steps == 0 or tick.last

    def run(self, loop: Any, tick: Tick) -> None:
        t0 = time.perf_counter()
        val_metrics = evaluate(loop.eval_step, loop.state, loop.eval_data, loop.task, loop.mesh)
        if tick.step % loop.config.eval_every_steps == 0:  # only epoch evaluations drive the plateau rule
            loop.state = loop.state.replace(plateau=loop.plateau_fn(loop.state.plateau, val_metrics["loss"]))
        val_metrics["lr_scale"] = float(jax.device_get(loop.state.plateau.scale))
        t1 = time.perf_counter()
        loop.writer.write(tick.step, "val", val_metrics)
        loop.timing.eval_s += t1 - t0
        loop.timing.write_s += time.perf_counter() - t1
        loop.record.last_val = val_metrics
        if loop.ckpt is not None:
            t0 = time.perf_counter()
            loop.ckpt.save_best(tick.step, loop.state, val_metrics, model_config=loop.model_config)
            loop.timing.checkpoint_s += time.perf_counter() - t0


class Checkpoint:
    """Every ``checkpoint_every_steps`` steps and at the last (when checkpoints are on): the periodic
    checkpoint with the loop record and the input iterator's state; then ``on_checkpoint(step)``. After
    ``evaluate`` (its plateau state is saved) and before ``prefetch`` (the input state is that of the
    steps done)."""

    name = "checkpoint"

    def due(self, loop: Any, tick: Tick) -> bool:
        return loop.ckpt is not None and (tick.step % loop.config.checkpoint_every_steps == 0 or tick.last)

    def run(self, loop: Any, tick: Tick) -> None:
        t0 = time.perf_counter()
        saved = loop.ckpt.save(tick.step, loop.state, model_config=loop.model_config,
                               loop_state=loop.record.to_dict(),
                               data_iterator=loop.iterator if loop.feeder.resumable else None)
        loop.timing.checkpoint_s += time.perf_counter() - t0
        if saved:
            logger.info("checkpoint saved at step %d", tick.step)
            if loop.on_checkpoint is not None:
                loop.on_checkpoint(tick.step)


class CheckFinite:
    """When a state is about to be logged, evaluated or saved (``log``, ``evaluate`` or ``checkpoint`` due):
    the losses and gradient norms of the steps since the last check are finite, else TrainingDivergedError.
    First, so that no diverged state is logged, evaluated or saved."""

    name = "check_finite"

    def due(self, loop: Any, tick: Tick) -> bool:
        return any(action.due(loop, tick) for action in (LOG, EVALUATE, CHECKPOINT))

    def run(self, loop: Any, tick: Tick) -> None:
        stop_if_diverged(loop.unchecked, loop.ckpt)
        loop.unchecked = []


class Prefetch:
    """Except at the last step: the next batch read and copied to the device while the step runs. After
    ``evaluate`` and ``checkpoint``, so that a checkpoint's input state is exactly that of the steps done.
    A data stream that has run out is reported by the next step's fetch."""

    name = "prefetch"

    def due(self, loop: Any, tick: Tick) -> bool:
        return not tick.last

    def run(self, loop: Any, tick: Tick) -> None:
        try:
            loop.feeder.prefetch()
        except StopIteration:
            pass  # reported by next()


class Progress:
    """Every step: the progress bar advanced by one (with ``log``'s postfix of this step, if any)."""

    name = "progress"

    def due(self, loop: Any, tick: Tick) -> bool:
        return True

    def run(self, loop: Any, tick: Tick) -> None:
        loop.progress.update(tick.step, 1, tick.post)


class Budget:
    """When the budget is spent: the run stops (``stopped: "budget"``). Last: the step was treated as the
    run's last, so its evaluation and checkpoint have run."""

    name = "budget"

    def due(self, loop: Any, tick: Tick) -> bool:
        return tick.over_budget

    def run(self, loop: Any, tick: Tick) -> None:
        loop.stopped = "budget"


CHECK_FINITE, LOG, EVALUATE, CHECKPOINT, PREFETCH, PROGRESS, BUDGET = (
    CheckFinite(), Log(), Evaluate(), Checkpoint(), Prefetch(), Progress(), Budget())
ACTIONS = (CHECK_FINITE, LOG, EVALUATE, CHECKPOINT, PREFETCH, PROGRESS, BUDGET)
