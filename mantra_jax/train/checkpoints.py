"""Orbax training checkpoints: periodic ones for resuming, best-by-validation ones for inference.

Layout of a work directory (``mantra_jax.io.orbax_layout``, which reads it for inference)::

    <workdir>/checkpoints/<step>/   periodic, the newest ``keep`` kept; a run resumes from the latest
    <workdir>/best/<step>/          saved at every evaluation, the ``keep_best`` best (lowest validation
                                    loss by default) kept

Each step directory holds Orbax items:

* ``state``: the train state as a tree of arrays: ``params``, ``batch_stats``, ``step``,
  ``plateau`` and ``opt_state`` flattened to ``{"00000": leaf, ...}`` (optimiser states are trees of
  named tuples, which are rebuilt from the running program's own optimiser on restore);
* ``layout`` (JSON): ``{"format", "version", "entries": [[name, shape, dtype], ...]}`` naming every leaf of
  ``state`` (``params/Featex/b1c1/bayar_kernel``, ``opt_state[0].mu['Featex']...``). Restoring compares it
  with the running program's state first, so a checkpoint of another model or optimiser is refused with
  the differences named (``CheckpointMismatchError``), never half-loaded;
* ``model_config`` (JSON): the config that rebuilds the network (``mantra_jax.models.config``);
* ``loop`` (JSON, periodic only): host-side loop bookkeeping (running train-loss sums ...);
* ``data`` (periodic only, when an input iterator is given): the grain iterator state, one JSON file per
  process (grain's own Orbax handler), so the input stream resumes exactly where it stopped. On another
  number of processes (no file of this process's name) the state of the writing processes is used when
  they all hold the same one, as the data pipeline's states (global batches read) do on every topology
  (``mantra_jax.data.pipeline``); else the checkpoint is refused with the reason.

Saves are synchronous (a checkpoint exists on disk when ``save`` returns) and atomic (Orbax writes a
temporary directory and renames it; a run killed mid-save leaves no visible step). An unreadable
checkpoint raises ``CheckpointCorruptError``. Reading a checkpoint for inference
(``restore_inference_variables``) is ``mantra_jax.io.orbax_layout``'s, re-exported here.
"""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Any, Mapping, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp

from mantra_jax.errors import CheckpointCorruptError, CheckpointError, CheckpointMismatchError
from mantra_jax.io.orbax_layout import (BEST_DIR, DATA, LAYOUT, LOOP, MODEL_CONFIG, PERIODIC_DIR, STATE,
                                        first_line as _first_line, quiet_orbax)
from mantra_jax.train.plateau import PlateauState
from mantra_jax.train.state import TrainState

logger = logging.getLogger(__name__)

FORMAT = "mantra_jax.train_state"
VERSION = 1
__all__ = ["TrainCheckpoints", "compare_layouts", "state_layout", "state_to_tree", "tree_to_state"]

# ---- the state as a tree of arrays ------------------------------------------------------------------

def _plateau_tree(p: PlateauState) -> dict[str, Any]:
    return {"best": p.best, "bad_evals": p.bad_evals, "scale": p.scale, "reductions": p.reductions}


def state_to_tree(state: TrainState) -> dict[str, Any]:
    """The train state as nested dicts of arrays (see the module docstring)."""
    opt_leaves = jax.tree.leaves(state.opt_state)
    return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
            "plateau": _plateau_tree(state.plateau),
            "opt_state": {f"{i:05d}": leaf for i, leaf in enumerate(opt_leaves)}}


def tree_to_state(target: TrainState, tree: Mapping[str, Any]) -> TrainState:
    """Rebuilds a TrainState shaped like ``target`` from ``state_to_tree`` output."""
    treedef = jax.tree.structure(target.opt_state)
    opt = tree["opt_state"]
    opt_state = jax.tree.unflatten(treedef, [opt[f"{i:05d}"] for i in range(treedef.num_leaves)])
    p = tree["plateau"]
    return TrainState(step=tree["step"], params=tree["params"], batch_stats=tree["batch_stats"],
                      opt_state=opt_state,
                      plateau=PlateauState(best=p["best"], bad_evals=p["bad_evals"], scale=p["scale"],
                                           reductions=p["reductions"]))


def _path_name(path: Sequence[Any]) -> str:
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            parts.append(k.name)
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        else:
            parts.append(str(k))
    return "/".join(parts)


def state_layout(state: TrainState) -> dict[str, Any]:
    """``{"format", "version", "entries": [[name, shape, dtype]...]}`` of every leaf of the state."""
    entries = []
    for name, tree in (("step", state.step), ("params", state.params), ("batch_stats", state.batch_stats),
                       ("plateau", _plateau_tree(state.plateau)),
                       ("opt_state", state.opt_state)):
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            entries.append([f"{name}/{_path_name(path)}".rstrip("/"), list(np.shape(leaf)),
                            str(np.dtype(leaf.dtype))])
    return {"format": FORMAT, "version": VERSION, "entries": entries}


def compare_layouts(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between a checkpoint's layout and the running state's (empty: same)."""
    if saved.get("format") != FORMAT:
        return [f"not a {FORMAT} checkpoint (format {saved.get('format')!r})"]
    if saved.get("version") != VERSION:
        return [f"layout version {saved.get('version')} is not {VERSION}"]
    a = {e[0]: (tuple(e[1]), e[2]) for e in saved["entries"]}
    b = {e[0]: (tuple(e[1]), e[2]) for e in wanted["entries"]}
    problems = []  # listed in layout order: params before optimiser state
    missing, extra = [k for k in b if k not in a], [k for k in a if k not in b]
    if missing:
        problems.append(f"{len(missing)} entries missing from the checkpoint (e.g. {', '.join(missing[:3])})")
    if extra:
        problems.append(f"{len(extra)} unexpected entries in the checkpoint (e.g. {', '.join(extra[:3])})")
    differ = [k for k in b if k in a and a[k] != b[k]]
    if differ:
        k = differ[0]
        problems.append(f"{len(differ)} entries differ in shape/dtype (e.g. {k}: checkpoint {a[k][0]} {a[k][1]}, "
                        f"this run {b[k][0]} {b[k][1]})")
    return problems


def _abstract(tree: Any) -> Any:
    def leaf(x: Any) -> Any:
        sharding = getattr(x, "sharding", None)
        return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)

    return jax.tree.map(leaf, tree)


# ---- managers -----------------------------------------------------------------------------------------

class TrainCheckpoints:
    """Periodic and best checkpoints of one work directory (see the module docstring).

    Args:
      workdir: the run's directory.
      keep: periodic checkpoints kept (newest).
      keep_best: best checkpoints kept.
      best_metric: validation metric ranking the best checkpoints; best_mode "min" or "max".
    """

    def __init__(self, workdir: str | pathlib.Path, *, keep: int = 3, keep_best: int = 1,
                 best_metric: str = "loss", best_mode: str = "min"):
        if keep < 1 or keep_best < 1:
            raise ValueError(f"keep and keep_best must be >= 1, got {keep}, {keep_best}")
        if best_mode not in ("min", "max"):
            raise ValueError(f"best_mode must be 'min' or 'max', got {best_mode!r}")
        self.workdir = pathlib.Path(workdir).absolute()
        self.best_metric = best_metric
        self.periodic = ocp.CheckpointManager(
            self.workdir / PERIODIC_DIR,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False))
        self.best = ocp.CheckpointManager(
            self.workdir / BEST_DIR,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep_best, enable_async_checkpointing=False, best_fn=lambda m: float(m[best_metric]),
                best_mode=best_mode, keep_checkpoints_without_metrics=False))

    def latest_step(self) -> int | None:
        return self.periodic.latest_step()

    def best_step(self) -> int | None:
        return self.best.best_step()

    @staticmethod
    def _items(state: TrainState, model_config: Mapping[str, Any]) -> dict[str, Any]:
        return {STATE: ocp.args.StandardSave(state_to_tree(state)),
                LAYOUT: ocp.args.JsonSave(state_layout(state)),
                MODEL_CONFIG: ocp.args.JsonSave(dict(model_config))}

    def save(self, step: int, state: TrainState, *, model_config: Mapping[str, Any],
             loop_state: Mapping[str, Any] | None = None, data_iterator: Any = None) -> bool:
        """Saves a periodic checkpoint at ``step`` (no-op, False, when that step already exists)."""
        if step in self.periodic.all_steps():
            return False
        items = self._items(state, model_config)
        items[LOOP] = ocp.args.JsonSave(dict(loop_state or {}))
        if data_iterator is not None:
            import grain

            items[DATA] = grain.checkpoint.CheckpointSave(data_iterator)
        self.periodic.save(step, args=ocp.args.Composite(**items))
        self.periodic.wait_until_finished()
        return True

    def save_best(self, step: int, state: TrainState, metrics: Mapping[str, float], *,
                  model_config: Mapping[str, Any]) -> bool:
        """Offers the state evaluated at ``step`` with validation ``metrics`` to the best-checkpoint set."""
        if step in self.best.all_steps():
            return False
        value = metrics.get(self.best_metric)
        if value is None or not np.isfinite(value):
            logger.warning("not offering step %d as a best checkpoint: %s = %s", step, self.best_metric, value)
            return False
        self.best.save(step, args=ocp.args.Composite(**self._items(state, model_config)),
                       metrics={k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        self.best.wait_until_finished()
        return True

    def restore(self, target: TrainState, *, step: int | None = None, data_iterator: Any = None,
                model_config: Mapping[str, Any] | None = None) -> tuple[TrainState, dict[str, Any]]:
        """Restores periodic checkpoint ``step`` (default: the latest) into the shape and sharding of
        ``target``; restores ``data_iterator`` in place when given. Returns ``(state, loop_state)``.

        Raises CheckpointMismatchError when the checkpoint's layout or model config differ from the running
        program's, CheckpointCorruptError when its files cannot be read, CheckpointError when there is none.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.workdir / PERIODIC_DIR}")
        where = f"checkpoint {self.workdir / PERIODIC_DIR / str(step)}"
        meta = _restore_json(self.periodic, step, (LAYOUT, MODEL_CONFIG, LOOP), where)
        problems = compare_layouts(meta[LAYOUT], state_layout(target))
        if problems:
            raise CheckpointMismatchError(f"{where} does not match this run's model/optimiser: "
                                          + "; ".join(problems))
        if model_config is not None and dict(meta[MODEL_CONFIG]) != json.loads(json.dumps(dict(model_config))):
            raise CheckpointMismatchError(f"{where} was written for model config {meta[MODEL_CONFIG]}, this run "
                                          f"uses {dict(model_config)}; use another work directory")
        items = {STATE: ocp.args.StandardRestore(_abstract(state_to_tree(target)))}
        other_topology = None
        if data_iterator is not None:
            data_dir = self.workdir / PERIODIC_DIR / str(step) / DATA
            if not data_dir.is_dir():
                raise CheckpointMismatchError(f"{where} holds no input-iterator state to resume the data from")
            if (data_dir / _data_file(jax.process_index(), jax.process_count())).is_file():
                import grain

                items[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
            else:
                other_topology = _common_data_state(data_dir, where)
        try:
            with quiet_orbax():
                restored = self.periodic.restore(step, args=ocp.args.Composite(**items))
        except Exception as e:  # noqa: BLE001 - Orbax/TensorStore raise many types for damaged files
            raise CheckpointCorruptError(f"{where} cannot be read (corrupt or incomplete): {_first_line(e)}") from e
        if other_topology is not None:
            data_iterator.set_state(other_topology)
        return tree_to_state(target, restored[STATE]), dict(meta[LOOP])

    def close(self) -> None:
        self.periodic.close()
        self.best.close()


def _data_file(index: int, count: int) -> str:
    """The name grain's handler gives the input state of process ``index`` of ``count``."""
    return f"process_{index}-of-{count}.json"


def _common_data_state(data_dir: pathlib.Path, where: str) -> Any:
    """The input state every writing process saved in ``data_dir`` when they all saved the same one."""
    files = sorted(data_dir.glob(_data_file("*", "*")))
    try:
        states = [json.loads(f.read_text()) for f in files]
    except (OSError, ValueError) as e:
        raise CheckpointCorruptError(f"{where} has an unreadable input-iterator state: {_first_line(e)}") from e
    if not states:
        raise CheckpointMismatchError(f"{where} holds no input-iterator state to resume the data from")
    if any(s != states[0] for s in states[1:]):
        raise CheckpointMismatchError(f"{where} was written by {len(states)} processes whose input states differ; "
                                      f"it resumes only with {len(states)} processes")
    return states[0]


def _restore_json(manager: ocp.CheckpointManager, step: int, names: Sequence[str], where: str) -> dict[str, Any]:
    missing = [n for n in names if not (pathlib.Path(manager.directory) / str(step) / n).is_dir()]
    if missing:
        raise CheckpointCorruptError(f"{where} lacks the item(s) {missing}: not a complete mantra_jax training "
                                     f"checkpoint")
    try:
        with quiet_orbax():
            restored = manager.restore(step, args=ocp.args.Composite(**{n: ocp.args.JsonRestore() for n in names}))
    except Exception as e:  # noqa: BLE001
        raise CheckpointCorruptError(f"{where} cannot be read (corrupt or incomplete): {_first_line(e)}") from e
    return {n: restored[n] for n in names}
