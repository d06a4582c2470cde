"""The training loop: initialise or resume, train, evaluate every epoch, checkpoint, log, summarise.

``train(...)`` runs ``config.num_steps`` steps of a task (``mantra_jax.train.tasks``) in ``workdir``:

* start: model variables (``init_variables`` or a fresh init), a train state replicated over the mesh;
  when ``workdir`` holds a periodic checkpoint the state, the input iterator and the loop's own
  bookkeeping are restored from the latest one, so a killed run started again ends where an
  uninterrupted run ends, with the same parameters;
* before the first step: the train step compiled once for the run's shapes by the memory preflight
  (``mantra_jax.train.preflight``: more micro-batches when it would not fit the device), then run as
  that executable;
* each step: the batch fetched during the previous step (``mantra_jax.train.feeder``; uint8 images go
  to the device as they are and are converted there), the step dispatched, the next batch read and copied
  while it runs. Metrics stay on the device and are fetched once per ``log_every_steps``, so the host
  never waits for a step except to log;
* every ``steps_per_epoch * eval_every_epochs`` steps: validation over ``eval_data`` (a re-iterable of
  batches), the learning-rate plateau updated with the validation loss, the state offered to the best
  checkpoints; every ``checkpoint_every_steps`` steps and at the end: a periodic checkpoint (after the
  evaluation of that step, so the plateau state is included);
* train metrics averaged over ``log_every_steps`` steps and validation metrics go to ``metrics.jsonl``
  and TensorBoard (``mantra_jax.train.writers``); on a terminal a tqdm bar shows progress, ETA and the
  latest losses, otherwise (a log file) one line per log interval;
* ``budget_s``: when that many seconds have passed since ``train`` started, the current step is treated
  as the last: validation, checkpoint, summary (``stopped: "budget"``);
* end: a final validation when the last step had none, ``summary.json`` (with the run's timings: compile,
  input wait, evaluation and writing seconds, samples per second, and the preflight's memory plan) and a
  printed summary table.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import sys
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import jax
import numpy as np
import optax

from mantra_jax.errors import TrainingDivergedError
from mantra_jax.io.atomic import write_text_atomic
from mantra_jax.io.json_safe import json_safe
from mantra_jax.models.compute import for_platform
from mantra_jax.train import sharding
from mantra_jax.train.checkpoints import TrainCheckpoints
from mantra_jax.train.feeder import DeviceFeeder
from mantra_jax.train.plateau import PAPER_FACTOR, PAPER_PATIENCE, PlateauState, plateau_update
from mantra_jax.train.preflight import fit_step
from mantra_jax.train.state import TrainState, create_train_state, init_variables as fresh_variables
from mantra_jax.train.step import make_eval_step, make_train_step
from mantra_jax.train.tasks import Task
from mantra_jax.train.writers import MetricWriter, format_table

logger = logging.getLogger(__name__)

SUMMARY = "summary.json"
MAX_IN_FLIGHT = 2  # steps dispatched and not yet finished (one runs, one waits: the device never idles)


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """num_steps: total train steps. steps_per_epoch: an epoch's steps (the paper: 1000).
    eval_every_epochs: validation period in epochs. checkpoint_every_steps: periodic checkpoint period.
    keep / keep_best: checkpoints kept. patience / factor / min_delta: plateau rule (evaluations).
    log_every_steps: train-metric averaging window. seed: initialisation seed. progress: tqdm bar (a
    line per log interval when stderr is not a terminal). budget_s: wall-clock seconds after which the run
    stops cleanly (0: none). micro_batches: gradient-accumulation parts to start the preflight from.
    memory_limit_bytes: device memory to fit the step into (0: the device's). checkpoints: write Orbax
    checkpoints (periodic, best) to the work directory."""

    num_steps: int
    steps_per_epoch: int
    eval_every_epochs: int = 1
    checkpoint_every_steps: int = 1000
    keep: int = 3
    keep_best: int = 1
    patience: int = PAPER_PATIENCE
    factor: float = PAPER_FACTOR
    min_delta: float = 0.0
    log_every_steps: int = 50
    seed: int = 0
    progress: bool = True
    budget_s: float = 0.0
    micro_batches: int = 1
    memory_limit_bytes: int = 0
    checkpoints: bool = True

    def __post_init__(self) -> None:
        for name in ("num_steps", "steps_per_epoch", "eval_every_epochs", "checkpoint_every_steps", "keep",
                     "keep_best", "patience", "log_every_steps", "micro_batches"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"LoopConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.budget_s < 0 or self.memory_limit_bytes < 0:
            raise ValueError(f"LoopConfig.budget_s and memory_limit_bytes must be >= 0, got {self.budget_s}, "
                             f"{self.memory_limit_bytes}")

    @property
    def eval_every_steps(self) -> int:
        return self.steps_per_epoch * self.eval_every_epochs


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


def _save_summary(path: pathlib.Path, summary: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(json_safe(summary), indent=1, sort_keys=True) + "\n")


class _Progress:
    """tqdm on a terminal; otherwise one line per log interval on stderr (no redrawing into log files)."""

    def __init__(self, enabled: bool, name: str, total: int, start: int):
        self.name, self.total, self.bar = name, total, None
        self.enabled = enabled
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=start, desc=name, unit="step", dynamic_ncols=True)

    def update(self, step: int, n: int, post: Mapping[str, str] | None) -> None:
        """``n`` steps done up to ``step``; ``post``: metrics of a log interval just ended (else None)."""
        if self.bar is not None:
            self.bar.update(n)
            if post:
                self.bar.set_postfix(post, refresh=False)
        elif self.enabled and post:
            print(f"{self.name}: step {step}/{self.total} " + " ".join(f"{k} {v}" for k, v in post.items()),
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _layout(tree: Any) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype, sharding=getattr(a, "sharding", None)),
                        tree)


def _precompiled(jitted: Callable, *layout: Any) -> Callable:
    """``jitted`` compiled now for arguments of ``layout``; other shapes go through ``jitted`` itself."""
    compiled = jitted.lower(*layout).compile()
    shapes = jax.tree.map(lambda a: (a.shape, a.dtype), layout)

    def call(*args: Any) -> Any:
        same = jax.tree.map(lambda a: (a.shape, a.dtype), args) == shapes
        return compiled(*args) if same else jitted(*args)

    return call


def train(**kwargs: Any) -> dict[str, Any]:
    """Runs (or resumes, or just reports) a training run; returns its summary. Arguments: see ``fit``."""
    return fit(**kwargs)[1]


def _stop_if_diverged(losses: Sequence[tuple[int, Any]], ckpt: Any) -> None:
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


def fit(*, model: Any, model_config: Mapping[str, Any], task: Task, tx: optax.GradientTransformation,
        train_data: Iterable[Mapping[str, Any]], eval_data: Iterable[Mapping[str, Any]],
        workdir: str | pathlib.Path, config: LoopConfig, init_variables: Mapping[str, Any] | None = None,
        frozen: Sequence[str] = (), mesh: Any = None, name: str = "train",
        on_checkpoint: Callable[[int], None] | None = None, plateau: PlateauState | None = None,
        data_state: Any = None, init_opt_state: Any = None) -> tuple[TrainState, dict[str, Any]]:
    """Runs (or resumes, or just reports) a training run (see the module docstring).

    Returns ``(state, summary)``: the final train state (on the mesh) and the run summary.

    Args:
      model: Linen module mapping images to the task's outputs. model_config: JSON-able dict rebuilding it
        (saved with every checkpoint; a workdir written for another config is refused).
      task: loss and validation metrics. tx: the optimiser. frozen: top-level modules not trained.
      train_data: iterable of batches (dicts of numpy arrays, this process's share of the global batch);
        its iterator's ``get_state``/``set_state`` (grain) make the input stream resumable.
      eval_data: re-iterable validation batches (iterated from the start at every evaluation).
      init_variables: ``{"params", "batch_stats"}`` to start from (default: fresh init with config.seed).
      mesh: device mesh (default: all devices). name: progress label.
      on_checkpoint: called with the step after each periodic checkpoint is on disk.
      plateau: the learning-rate plateau state to start from (default: fresh), e.g. a previous run's.
      data_state: an input-iterator state (``get_state()`` of the same loader) to start the data from.
      init_opt_state: the optimiser state to start from (default: ``tx.init``), e.g. a previous run's Adam
        moments, so that a run continued in a new workdir takes the steps the uninterrupted run takes.
    """
    t_start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    mesh = sharding.make_mesh() if mesh is None else mesh
    primary = jax.process_index() == 0
    model = for_platform(model, mesh.devices.flat[0].platform)
    variables = fresh_variables(model, config.seed) if init_variables is None else dict(init_variables)
    state = create_train_state(variables, tx, config.seed, opt_state=init_opt_state)
    if plateau is not None:
        state = state.replace(plateau=plateau)
    state = sharding.replicate(state, mesh)
    eval_step = sharding.jit_eval_step(make_eval_step(model, task), mesh)
    plateau_fn = jax.jit(lambda p, v: plateau_update(p, v, patience=config.patience, factor=config.factor,
                                                     min_delta=config.min_delta),
                         out_shardings=sharding.replicated(mesh))

    ckpt = TrainCheckpoints(workdir, keep=config.keep, keep_best=config.keep_best) if config.checkpoints else None
    writer = MetricWriter(workdir, enabled=primary)
    iterator = iter(train_data)
    feeder = DeviceFeeder(iterator, task.batch_keys, mesh)
    if data_state is not None:
        feeder.set_state(data_state)
    loop: dict[str, Any] = {"first_train_loss": None, "last_val": None}
    start = 0
    if ckpt is not None and ckpt.latest_step() is not None:
        state, loop = ckpt.restore(state, data_iterator=iterator if feeder.resumable else None,
                                   model_config=model_config)
        start = int(jax.device_get(state.step))
        writer.truncate_after(start)
        if primary:
            print(f"{name}: resuming {workdir} from step {start}", flush=True)
    if not feeder.resumable:
        logger.warning("the training data iterator has no get_state/set_state: a resumed run restarts its data")

    timing = {"compile_s": 0.0, "eval_s": 0.0, "write_s": 0.0, "checkpoint_s": 0.0, "input_wait_s": 0.0}
    plan = None
    step = start
    stopped = "done"
    val_metrics = loop.get("last_val")
    progress = _Progress(config.progress and primary, name, config.num_steps, start)
    samples = 0
    t_steps = time.perf_counter()
    try:
        if step < config.num_steps:
            try:
                first = feeder.peek()
            except StopIteration:
                raise ValueError("the training data gave no batch") from None
            if isinstance(first, Mapping):
                task.check_batch(first)
            batch_size = int(np.shape(first["image"])[0]) * jax.process_count()
            per_device = batch_size // mesh.devices.size
            plan = fit_step(
                lambda k: sharding.jit_train_step(make_train_step(model, task.loss_fn, tx, frozen=frozen,
                                                                  micro_batches=k), mesh),
                _layout(state), _layout(feeder.peek_device()), per_device_batch=per_device,
                limit_bytes=config.memory_limit_bytes or None, micro_batches=config.micro_batches)
            timing["compile_s"] += plan.compile_s
            t0 = time.perf_counter()  # the eval step too, now, so that a budget is not overrun by its compile
            eval_step = _precompiled(eval_step, _layout(state), _layout(feeder.peek_device()))
            timing["compile_s"] += time.perf_counter() - t0
            feeder.wait_s = 0.0
            t_steps = time.perf_counter()
        window: list[dict[str, Any]] = []
        in_flight: list[Any] = []
        unchecked: list[tuple[int, Any]] = []  # (step, (loss, grad norm)) not yet checked for being finite
        while step < config.num_steps:
            try:
                batch = feeder.next()
            except StopIteration:
                raise ValueError(f"the training data ran out after {step} steps; use a repeating loader") from None
            state, metrics = plan.compiled(state, batch)
            step += 1
            samples += batch_size
            window.append(metrics)
            in_flight.append(metrics["loss"])
            unchecked.append((step, (metrics["loss"], metrics["grad_norm"])))  # finite both: finite update
            if len(in_flight) > MAX_IN_FLIGHT:  # the host may run this many steps ahead of the device, not
                in_flight.pop(0).block_until_ready()  # more: the budget is then kept to within a step or two
            over_budget = config.budget_s > 0 and time.perf_counter() - t_start >= config.budget_s
            last = step == config.num_steps or over_budget
            if (last or step % config.log_every_steps == 0 or step % config.eval_every_steps == 0
                    or (ckpt is not None and step % config.checkpoint_every_steps == 0)):
                _stop_if_diverged(unchecked, ckpt)  # before a state is logged, evaluated or saved
                unchecked = []
            post = None
            if step % config.log_every_steps == 0 or last:
                host = jax.device_get(window)
                t0 = time.perf_counter()
                n = len(host)
                mean = lambda key: float(np.mean([m[key] for m in host]))  # noqa: E731
                if loop["first_train_loss"] is None:
                    loop["first_train_loss"] = float(host[0]["loss"])
                loop["last_train_loss"] = mean("loss")
                elapsed = max(time.perf_counter() - loop.get("window_start", t_steps), 1e-9)
                writer.write(step, "train", {"loss": loop["last_train_loss"], "grad_norm": mean("grad_norm"),
                                             "lr_scale": float(host[-1]["lr_scale"]), "steps_per_s": n / elapsed})
                window = []
                post = {"loss": f"{loop['last_train_loss']:.4f}"}
                if val_metrics:
                    post["val_loss"] = f"{val_metrics['loss']:.4f}"
                timing["write_s"] += time.perf_counter() - t0
                loop["window_start"] = time.perf_counter()
            scheduled = step % config.eval_every_steps == 0
            if scheduled or last:  # the last step is always evaluated
                t0 = time.perf_counter()
                val_metrics = evaluate(eval_step, state, eval_data, task, mesh)
                if scheduled:  # only epoch evaluations drive the plateau rule
                    state = state.replace(plateau=plateau_fn(state.plateau, val_metrics["loss"]))
                val_metrics["lr_scale"] = float(jax.device_get(state.plateau.scale))
                t1 = time.perf_counter()
                writer.write(step, "val", val_metrics)
                timing["eval_s"] += t1 - t0
                timing["write_s"] += time.perf_counter() - t1
                loop["last_val"] = val_metrics
                if ckpt is not None:
                    t0 = time.perf_counter()
                    ckpt.save_best(step, state, val_metrics, model_config=model_config)
                    timing["checkpoint_s"] += time.perf_counter() - t0
            if ckpt is not None and (step % config.checkpoint_every_steps == 0 or last):
                t0 = time.perf_counter()
                saved = ckpt.save(step, state, model_config=model_config, loop_state=_loop_record(loop),
                                  data_iterator=iterator if feeder.resumable else None)
                timing["checkpoint_s"] += time.perf_counter() - t0
                if saved:
                    logger.info("checkpoint saved at step %d", step)
                    if on_checkpoint is not None:
                        on_checkpoint(step)
            if not last:  # the step runs on the device meanwhile (evaluation and checkpoints come first so
                try:       # that a checkpoint's input state is exactly that of the steps done)
                    feeder.prefetch()
                except StopIteration:
                    pass  # reported by next()
            progress.update(step, 1, post)
            if over_budget:
                stopped = "budget"
                break
        jax.block_until_ready(state)
    finally:
        progress.close()
        writer.close()
        if ckpt is not None:
            ckpt.close()

    total = time.perf_counter() - t_start
    run_s = time.perf_counter() - t_steps
    timing.update(input_wait_s=feeder.wait_s, total_s=total, steps_s=run_s)
    steps_run = step - start
    train_s = max(run_s - timing["eval_s"] - timing["write_s"] - timing["checkpoint_s"], 1e-9)
    timing.update(steps_run=steps_run, samples=samples, samples_per_s=samples / train_s if steps_run else None,
                  input_wait_share=feeder.wait_s / max(run_s, 1e-9),
                  eval_and_write_share=(timing["eval_s"] + timing["write_s"]) / max(total, 1e-9))
    summary = {"workdir": str(workdir), "steps": step, "first_train_loss": loop.get("first_train_loss"),
               "last_train_loss": loop.get("last_train_loss"), "val": val_metrics,
               "lr_scale": float(jax.device_get(state.plateau.scale)),
               "best_step": ckpt.best_step() if ckpt is not None else None, "stopped": stopped,
               "timing": timing, "memory": plan.report() if plan is not None else None,
               "data_state": feeder.get_state() if feeder.resumable and steps_run else None}
    if primary:
        _save_summary(workdir / SUMMARY, summary)
        rows = {"train": {"loss (first)": summary["first_train_loss"], "loss (last)": summary["last_train_loss"]},
                "val": {k: (val_metrics or {}).get(k) for k in task.headline}}
        columns = ["loss (first)", "loss (last)"] + list(task.headline)
        print(f"\n{name}: {step} steps in {workdir}\n" + format_table(rows, columns, row_header="split"))
    return state, summary


def _loop_record(loop: Mapping[str, Any]) -> dict[str, Any]:
    """The loop's bookkeeping saved with a checkpoint (JSON-able; timers excluded)."""
    return {k: v for k, v in loop.items() if k != "window_start"}
