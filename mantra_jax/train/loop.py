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

``fit`` runs a ``TrainLoop``: its phases are methods (``restore_or_init``, ``compile``, ``run``), the
periodic work after each step an ordered tuple of actions (``mantra_jax.train.loop_actions.ACTIONS``, whose
docstrings state the ordering rules), its bookkeeping and summary dataclasses
(``mantra_jax.train.loop_record``).
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import sys
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import jax
import numpy as np
import optax

from mantra_jax.models.compute import for_platform
from mantra_jax.train import sharding
from mantra_jax.train.checkpoints import TrainCheckpoints
from mantra_jax.train.feeder import DeviceFeeder
from mantra_jax.train.loop_actions import ACTIONS, Tick, loop_eval_step
from mantra_jax.train.loop_record import LoopRecord, RunSummary, Timing
from mantra_jax.train.plateau import PAPER_FACTOR, PAPER_PATIENCE, PlateauState, plateau_update
from mantra_jax.train.preflight import fit_step
from mantra_jax.train.state import TrainState, create_train_state, init_variables as fresh_variables
from mantra_jax.train.step import make_train_step
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

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The loop fields of a ``train`` block at their defaults (the home of those defaults; the
        block of experiments/configs/blocks.py is built from them): every field with a default but
        ``progress`` (a config's top-level setting), and ``num_steps`` 0 (``num_epochs * steps_per_epoch``)."""
        fields = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        del fields["progress"]
        return {"num_steps": 0, **fields}

    @classmethod
    def from_config(cls, train: Mapping[str, Any], progress: bool = True) -> "LoopConfig":
        """The loop settings of a ``train`` block (experiments/configs/blocks.py; a ConfigDict or its
        ``to_dict()``): every field read from the key of its name, except ``progress`` (given) and
        ``num_steps``: the block's ``num_steps``, or ``num_epochs * steps_per_epoch`` when that is 0 (and
        the block has ``num_epochs``). A loop key missing from the block raises KeyError (no setting is left at a default silently)."""
        cast = {"int": int, "float": float, "bool": bool}
        fields = {f.name: cast[f.type](train[f.name]) for f in dataclasses.fields(cls) if f.name != "progress"}
        if not fields["num_steps"] and "num_epochs" in train:  # else 0 steps: __post_init__'s one-line error
            fields["num_steps"] = int(train["num_epochs"]) * fields["steps_per_epoch"]
        return cls(**fields, progress=progress)


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


class TrainLoop:
    """One training run (see the module docstring; arguments: see ``fit``) in explicit phases:
    ``restore_or_init`` (the state fresh or from the latest periodic checkpoint), ``compile`` (the train
    step fitted into memory, the eval step compiled), ``run`` (the steps, each followed by the due
    ``actions`` in their order: ``mantra_jax.train.loop_actions.ACTIONS``), ``close`` and ``summarise``.
    ``__call__`` runs them all and returns ``(state, summary)``."""

    def __init__(self, *, model: Any, model_config: Mapping[str, Any], task: Task, tx: optax.GradientTransformation,
                 train_data: Iterable[Mapping[str, Any]], eval_data: Iterable[Mapping[str, Any]],
                 workdir: str | pathlib.Path, config: LoopConfig, init_variables: Mapping[str, Any] | None = None,
                 frozen: Sequence[str] = (), mesh: Any = None, name: str = "train",
                 on_checkpoint: Callable[[int], None] | None = None, plateau: PlateauState | None = None,
                 data_state: Any = None, init_opt_state: Any = None, actions: Sequence[Any] = ACTIONS):
        self.t_start = time.perf_counter()
        self.model_config, self.task, self.tx, self.frozen = model_config, task, tx, frozen
        self.eval_data, self.config, self.name, self.on_checkpoint = eval_data, config, name, on_checkpoint
        self.actions = tuple(actions)
        self.workdir = pathlib.Path(workdir)
        self.mesh = sharding.make_mesh() if mesh is None else mesh
        self.primary = jax.process_index() == 0
        self.model = for_platform(model, self.mesh.devices.flat[0].platform)
        self.init_variables, self.init_plateau, self.init_opt_state = init_variables, plateau, init_opt_state
        self.plateau_fn = jax.jit(lambda p, v: plateau_update(p, v, patience=config.patience, factor=config.factor,
                                                              min_delta=config.min_delta),
                                  out_shardings=sharding.replicated(self.mesh))
        self.train_data, self.data_state = train_data, data_state
        self.ckpt = self.writer = self.progress = self.state = self.plan = self.iterator = self.feeder = None
        self.record = LoopRecord()
        self.timing = Timing()
        self.start = self.step = self.samples = self.batch_size = 0
        self.stopped = "done"
        self.window: list[dict[str, Any]] = []  # the current log interval's metrics (on the device)
        self.in_flight: list[Any] = []  # losses of the steps dispatched and maybe not finished
        self.unchecked: list[tuple[int, Any]] = []  # (step, (loss, grad norm)) not yet checked for being finite
        self.window_start: float | None = None  # when the current log interval began (None: at t_steps)
        self.t_steps = time.perf_counter()

    def restore_or_init(self) -> None:
        """The train state (``init_variables`` or a fresh init; ``init_opt_state``, ``plateau``) replicated
        over the mesh, the input iterator (started from ``data_state``); then, when the workdir holds a
        periodic checkpoint, the state, the input iterator and the loop record restored from the latest one
        (metrics after its step are dropped)."""
        config = self.config
        variables = (fresh_variables(self.model, config.seed) if self.init_variables is None
                     else dict(self.init_variables))
        state = create_train_state(variables, self.tx, config.seed, opt_state=self.init_opt_state)
        if self.init_plateau is not None:
            state = state.replace(plateau=self.init_plateau)
        self.state = sharding.replicate(state, self.mesh)
        self.eval_step = loop_eval_step(self.model, self.task, self.mesh)
        self.ckpt = (TrainCheckpoints(self.workdir, keep=config.keep, keep_best=config.keep_best)
                     if config.checkpoints else None)
        self.writer = MetricWriter(self.workdir, enabled=self.primary)
        self.iterator = iter(self.train_data)
        self.feeder = DeviceFeeder(self.iterator, self.task.batch_keys, self.mesh)
        if self.data_state is not None:
            self.feeder.set_state(self.data_state)
        if self.ckpt is not None and self.ckpt.latest_step() is not None:
            self.state, record = self.ckpt.restore(self.state, model_config=self.model_config,
                                                   data_iterator=self.iterator if self.feeder.resumable else None)
            self.record = LoopRecord.from_dict(record)
            self.start = self.step = int(jax.device_get(self.state.step))
            self.writer.truncate_after(self.start)
            if self.primary:
                print(f"{self.name}: resuming {self.workdir} from step {self.start}", flush=True)
        if not self.feeder.resumable:
            logger.warning("the training data iterator has no get_state/set_state: a resumed run restarts its data")
        self.progress = _Progress(config.progress and self.primary, self.name, config.num_steps, self.start)
        self.t_steps = time.perf_counter()

    def compile(self) -> None:
        """When steps remain: the first batch checked, the train step compiled by the memory preflight for
        the run's shapes, the eval step compiled now too (so that a budget is not overrun by its compile)."""
        if self.step >= self.config.num_steps:
            return
        try:
            first = self.feeder.peek()
        except StopIteration:
            raise ValueError("the training data gave no batch") from None
        if isinstance(first, Mapping):
            self.task.check_batch(first)
        self.batch_size = int(np.shape(first["image"])[0]) * jax.process_count()
        per_device = self.batch_size // self.mesh.devices.size
        model, task, tx, frozen, mesh = self.model, self.task, self.tx, self.frozen, self.mesh
        self.plan = fit_step(
            lambda k: sharding.jit_train_step(make_train_step(model, task.loss_fn, tx, frozen=frozen,
                                                              micro_batches=k), mesh),
            _layout(self.state), _layout(self.feeder.peek_device()), per_device_batch=per_device,
            limit_bytes=self.config.memory_limit_bytes or None, micro_batches=self.config.micro_batches)
        self.timing.compile_s += self.plan.compile_s
        t0 = time.perf_counter()
        self.eval_step = _precompiled(self.eval_step, _layout(self.state), _layout(self.feeder.peek_device()))
        self.timing.compile_s += time.perf_counter() - t0
        self.feeder.wait_s = 0.0
        self.t_steps = time.perf_counter()

    def train_step(self) -> Tick:
        """Dispatches one step on the batch fetched before; returns its tick. The host runs at most
        MAX_IN_FLIGHT steps ahead of the device (so the budget is kept to within a step or two)."""
        try:
            batch = self.feeder.next()
        except StopIteration:
            raise ValueError(f"the training data ran out after {self.step} steps; use a repeating loader") from None
        self.state, metrics = self.plan.compiled(self.state, batch)
        self.step += 1
        self.samples += self.batch_size
        self.window.append(metrics)
        self.in_flight.append(metrics["loss"])
        self.unchecked.append((self.step, (metrics["loss"], metrics["grad_norm"])))  # finite both: finite update
        if len(self.in_flight) > MAX_IN_FLIGHT:
            self.in_flight.pop(0).block_until_ready()
        budget = self.config.budget_s
        over_budget = budget > 0 and time.perf_counter() - self.t_start >= budget
        return Tick(self.step, last=self.step == self.config.num_steps or over_budget, over_budget=over_budget)

    def run(self) -> None:
        """The remaining steps, each followed by its due actions in order, until the last or the budget."""
        while self.step < self.config.num_steps and self.stopped == "done":
            tick = self.train_step()
            for action in self.actions:
                if action.due(self, tick):
                    action.run(self, tick)
        jax.block_until_ready(self.state)

    def close(self) -> None:
        for part in (self.progress, self.writer, self.ckpt):
            if part is not None:
                part.close()

    def summarise(self) -> RunSummary:
        """The run summary; written to ``summary.json`` and printed as a table by the primary process."""
        total, run_s = time.perf_counter() - self.t_start, time.perf_counter() - self.t_steps
        self.timing.input_wait_s = self.feeder.wait_s
        steps_run = self.step - self.start
        record, feeder = self.record, self.feeder
        summary = RunSummary(
            workdir=str(self.workdir), steps=self.step, first_train_loss=record.first_train_loss,
            last_train_loss=record.last_train_loss, val=record.last_val,
            lr_scale=float(jax.device_get(self.state.plateau.scale)),
            best_step=self.ckpt.best_step() if self.ckpt is not None else None, stopped=self.stopped,
            timing=self.timing.report(total_s=total, steps_s=run_s, steps_run=steps_run, samples=self.samples),
            memory=self.plan.report() if self.plan is not None else None,
            data_state=feeder.get_state() if feeder.resumable and steps_run else None)
        if self.primary:
            summary.save(self.workdir / SUMMARY)
            rows = {"train": {"loss (first)": summary.first_train_loss, "loss (last)": summary.last_train_loss},
                    "val": {k: (summary.val or {}).get(k) for k in self.task.headline}}
            columns = ["loss (first)", "loss (last)"] + list(self.task.headline)
            print(f"\n{self.name}: {self.step} steps in {self.workdir}\n"
                  + format_table(rows, columns, row_header="split"))
        return summary

    def __call__(self) -> tuple[TrainState, dict[str, Any]]:
        self.restore_or_init()
        try:
            self.compile()
            self.run()
        finally:
            self.close()
        return self.state, self.summarise().to_dict()


def train(**kwargs: Any) -> dict[str, Any]:
    """Runs (or resumes, or just reports) a training run; returns its summary. Arguments: see ``fit``."""
    return fit(**kwargs)[1]


def fit(*, model: Any, model_config: Mapping[str, Any], task: Task, tx: optax.GradientTransformation,
        train_data: Iterable[Mapping[str, Any]], eval_data: Iterable[Mapping[str, Any]],
        workdir: str | pathlib.Path, config: LoopConfig, init_variables: Mapping[str, Any] | None = None,
        frozen: Sequence[str] = (), mesh: Any = None, name: str = "train",
        on_checkpoint: Callable[[int], None] | None = None, plateau: PlateauState | None = None,
        data_state: Any = None, init_opt_state: Any = None) -> tuple[TrainState, dict[str, Any]]:
    """Runs (or resumes, or just reports) a training run (see the module docstring): ``TrainLoop(...)()``.

    Returns ``(state, summary)``: the final train state (on the mesh) and the run summary
    (``RunSummary.to_dict``).

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
    return TrainLoop(model=model, model_config=model_config, task=task, tx=tx, train_data=train_data,
                     eval_data=eval_data, workdir=workdir, config=config, init_variables=init_variables,
                     frozen=frozen, mesh=mesh, name=name, on_checkpoint=on_checkpoint, plateau=plateau,
                     data_state=data_state, init_opt_state=init_opt_state)()
