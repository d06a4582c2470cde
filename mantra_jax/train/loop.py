"""The training loop: initialise or resume, train, evaluate every epoch, checkpoint, log, summarise.

``train(...)`` runs ``config.num_steps`` steps of a task (``mantra_jax.train.tasks``) in ``workdir``:

* start: model variables (``init_variables`` or a fresh init), a train state replicated over the mesh;
  when ``workdir`` holds a periodic checkpoint the state, the input iterator and the loop's own
  bookkeeping are restored from the latest one, so a killed run started again ends where an
  uninterrupted run ends, with the same parameters;
* each step: next batch (only ``task.batch_keys``), sharded over the "data" axis, jitted train step;
* every ``steps_per_epoch * eval_every_epochs`` steps: validation over ``eval_data`` (a re-iterable of
  batches), the learning-rate plateau updated with the validation loss, the state offered to the best
  checkpoints; every ``checkpoint_every_steps`` steps and at the end: a periodic checkpoint (after the
  evaluation of that step, so the plateau state is included);
* train metrics averaged over ``log_every_steps`` steps and validation metrics go to ``metrics.jsonl``
  and TensorBoard (``mantra_jax.train.writers``); a tqdm bar shows progress, ETA and the latest losses;
* end: a final validation when the last step had none, ``summary.json`` and a printed summary table.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import jax
import numpy as np
import optax

from mantra_jax.io.atomic import write_text_atomic
from mantra_jax.io.json_safe import json_safe
from mantra_jax.train import sharding
from mantra_jax.train.checkpoints import TrainCheckpoints
from mantra_jax.train.plateau import plateau_update
from mantra_jax.train.state import TrainState, create_train_state, init_variables as fresh_variables
from mantra_jax.train.step import make_eval_step, make_train_step
from mantra_jax.train.tasks import Task
from mantra_jax.train.writers import MetricWriter, format_table

logger = logging.getLogger(__name__)

SUMMARY = "summary.json"


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """num_steps: total train steps. steps_per_epoch: an epoch's steps (the paper: 1000).
    eval_every_epochs: validation period in epochs. checkpoint_every_steps: periodic checkpoint period.
    keep / keep_best: checkpoints kept. patience / factor / min_delta: plateau rule (evaluations).
    log_every_steps: train-metric averaging window. seed: initialisation seed. progress: tqdm bar."""

    num_steps: int
    steps_per_epoch: int
    eval_every_epochs: int = 1
    checkpoint_every_steps: int = 1000
    keep: int = 3
    keep_best: int = 1
    patience: int = 20
    factor: float = 0.5
    min_delta: float = 0.0
    log_every_steps: int = 50
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("num_steps", "steps_per_epoch", "eval_every_epochs", "checkpoint_every_steps", "keep",
                     "keep_best", "patience", "log_every_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"LoopConfig.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def eval_every_steps(self) -> int:
        return self.steps_per_epoch * self.eval_every_epochs


def evaluate(eval_step: Callable, state: TrainState, eval_data: Iterable[Mapping[str, Any]], task: Task,
             mesh: Any) -> dict[str, float]:
    """Sums the task's validation sums over ``eval_data`` and summarises them."""
    totals: dict[str, np.ndarray] = {}
    for batch in eval_data:
        sums = jax.device_get(eval_step(state, sharding.shard_batch({k: batch[k] for k in task.batch_keys}, mesh)))
        for k, v in sums.items():
            v = np.asarray(v, np.float64 if np.issubdtype(np.asarray(v).dtype, np.floating) else np.int64)
            totals[k] = totals[k] + v if k in totals else v
    if not totals:
        raise ValueError("the validation data gave no batch")
    return task.summarize(totals)


def _save_summary(path: pathlib.Path, summary: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(json_safe(summary), indent=1, sort_keys=True) + "\n")


def train(*, model: Any, model_config: Mapping[str, Any], task: Task, tx: optax.GradientTransformation,
          train_data: Iterable[Mapping[str, Any]], eval_data: Iterable[Mapping[str, Any]],
          workdir: str | pathlib.Path, config: LoopConfig, init_variables: Mapping[str, Any] | None = None,
          frozen: Sequence[str] = (), mesh: Any = None, name: str = "train",
          on_checkpoint: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Runs (or resumes, or just reports) a training run; returns its summary (see the module docstring).

    Args:
      model: Linen module mapping images to the task's outputs. model_config: JSON-able dict rebuilding it
        (saved with every checkpoint; a workdir written for another config is refused).
      task: loss and validation metrics. tx: the optimiser. frozen: top-level modules not trained.
      train_data: iterable of batches (dicts of numpy arrays, this process's share of the global batch);
        its iterator's ``get_state``/``set_state`` (grain) make the input stream resumable.
      eval_data: re-iterable validation batches (iterated from the start at every evaluation).
      init_variables: ``{"params", "batch_stats"}`` to start from (default: fresh init with config.seed).
      mesh: device mesh (default: all devices). name: progress-bar label.
      on_checkpoint: called with the step after each periodic checkpoint is on disk.
    """
    workdir = pathlib.Path(workdir)
    mesh = sharding.make_mesh() if mesh is None else mesh
    primary = jax.process_index() == 0
    variables = fresh_variables(model, config.seed) if init_variables is None else dict(init_variables)
    state = sharding.replicate(create_train_state(variables, tx, config.seed), mesh)
    train_step = sharding.jit_train_step(make_train_step(model, task.loss_fn, tx, frozen=frozen), mesh)
    eval_step = sharding.jit_eval_step(make_eval_step(model, task), mesh)
    plateau_fn = jax.jit(lambda p, v: plateau_update(p, v, patience=config.patience, factor=config.factor,
                                                     min_delta=config.min_delta),
                         out_shardings=sharding.replicated(mesh))

    ckpt = TrainCheckpoints(workdir, keep=config.keep, keep_best=config.keep_best)
    writer = MetricWriter(workdir, enabled=primary)
    iterator = iter(train_data)
    resumable = hasattr(iterator, "get_state") and hasattr(iterator, "set_state")
    loop: dict[str, Any] = {"window_loss": 0.0, "window_grad_norm": 0.0, "window_count": 0, "window_time": 0.0,
                            "first_train_loss": None, "last_val": None}
    start = 0
    if ckpt.latest_step() is not None:
        state, loop = ckpt.restore(state, data_iterator=iterator if resumable else None, model_config=model_config)
        start = int(jax.device_get(state.step))
        writer.truncate_after(start)
        if primary:
            print(f"{name}: resuming {workdir} from step {start}", flush=True)
    if not resumable:
        logger.warning("the training data iterator has no get_state/set_state: a resumed run restarts its data")

    bar = None
    if config.progress and primary:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.num_steps, initial=start, desc=name, unit="step", dynamic_ncols=True)
    val_metrics = loop.get("last_val")
    checked = False
    step = start
    try:
        while step < config.num_steps:
            t0 = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                raise ValueError(f"the training data ran out after {step} steps; use a repeating loader") from None
            batch = {k: batch[k] for k in task.batch_keys} if isinstance(batch, Mapping) else batch
            if not checked:
                task.check_batch(batch)
                checked = True
            state, metrics = train_step(state, sharding.shard_batch(batch, mesh))
            loss, grad_norm = (float(x) for x in jax.device_get((metrics["loss"], metrics["grad_norm"])))
            step += 1
            if loop["first_train_loss"] is None:
                loop["first_train_loss"] = loss
            loop["window_loss"] += loss
            loop["window_grad_norm"] += grad_norm
            loop["window_count"] += 1
            loop["window_time"] += time.perf_counter() - t0
            if step % config.log_every_steps == 0 or step == config.num_steps:
                n = loop["window_count"]
                writer.write(step, "train", {"loss": loop["window_loss"] / n,
                                             "grad_norm": loop["window_grad_norm"] / n,
                                             "lr_scale": float(jax.device_get(metrics["lr_scale"])),
                                             "steps_per_s": n / max(loop["window_time"], 1e-9)})
                loop["last_train_loss"] = loop["window_loss"] / n
                loop.update(window_loss=0.0, window_grad_norm=0.0, window_count=0, window_time=0.0)
            scheduled = step % config.eval_every_steps == 0
            if scheduled or step == config.num_steps:  # the last step is always evaluated
                val_metrics = evaluate(eval_step, state, eval_data, task, mesh)
                if scheduled:  # only epoch evaluations drive the plateau rule
                    state = state.replace(plateau=plateau_fn(state.plateau, val_metrics["loss"]))
                val_metrics["lr_scale"] = float(jax.device_get(state.plateau.scale))
                writer.write(step, "val", val_metrics)
                ckpt.save_best(step, state, val_metrics, model_config=model_config)
                loop["last_val"] = val_metrics
            if step % config.checkpoint_every_steps == 0 or step == config.num_steps:
                if ckpt.save(step, state, model_config=model_config, loop_state=loop,
                             data_iterator=iterator if resumable else None):
                    logger.info("checkpoint saved at step %d", step)
                    if on_checkpoint is not None:
                        on_checkpoint(step)
            if bar is not None:
                bar.update(1)
                post = {"loss": f"{loss:.4f}"}
                if val_metrics:
                    post["val_loss"] = f"{val_metrics['loss']:.4f}"
                bar.set_postfix(post, refresh=False)
    finally:
        if bar is not None:
            bar.close()
        writer.close()
        ckpt.close()

    summary = {"workdir": str(workdir), "steps": step, "first_train_loss": loop.get("first_train_loss"),
               "last_train_loss": loop.get("last_train_loss"), "val": val_metrics,
               "lr_scale": float(jax.device_get(state.plateau.scale)), "best_step": ckpt.best_step()}
    if primary:
        _save_summary(workdir / SUMMARY, summary)
        rows = {"train": {"loss (first)": summary["first_train_loss"], "loss (last)": summary["last_train_loss"]},
                "val": {k: (val_metrics or {}).get(k) for k in task.headline}}
        columns = ["loss (first)", "loss (last)"] + list(task.headline)
        print(f"\n{name}: {step} steps in {workdir}\n" + format_table(rows, columns, row_header="split"))
    return summary

