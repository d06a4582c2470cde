"""The Orbax step-directory layout of training checkpoints, and reading one for inference.

Layout of a work directory (written by ``mantra_jax.train.checkpoints.TrainCheckpoints``)::

    <workdir>/checkpoints/<step>/   periodic, the newest ``keep`` kept; a run resumes from the latest
    <workdir>/best/<step>/          saved at every evaluation, the ``keep_best`` best (lowest validation
                                    loss by default) kept

Each step directory holds the Orbax items ``state`` (the train state as a tree of arrays, ``params`` and
``batch_stats`` among them), ``layout`` (JSON naming every leaf of ``state``), ``model_config`` (JSON,
``mantra_jax.models.config``), and in periodic ones ``loop`` (JSON) and ``data`` (the input iterator).

``restore_inference_variables(directory)`` gives ``(model config, {"params", "batch_stats"})`` of a work
directory (the best checkpoint, else the latest), of a manager directory (its latest step) or of one step
directory, as host numpy arrays, without the training package. Every failure is a ``CheckpointError``.
"""

from __future__ import annotations

import contextlib
import pathlib
from typing import Any, Mapping

import numpy as np

from mantra_jax.errors import CheckpointCorruptError, CheckpointError

STATE, LAYOUT, MODEL_CONFIG, LOOP, DATA = "state", "layout", "model_config", "loop", "data"
PERIODIC_DIR, BEST_DIR = "checkpoints", "best"


class _DropNotices:
    """logging filter: drops records up to WARNING (errors pass)."""

    def filter(self, record) -> bool:  # noqa: A003 - logging's name
        import logging

        return record.levelno > logging.WARNING


@contextlib.contextmanager
def quiet_orbax():
    """Silences the ``absl`` logger's notices up to WARNING while Orbax reads a checkpoint (it logs
    ``WARNING:absl:Metadata file does not exist ...`` for every item read on its own), so a clean load prints
    nothing. Scope it to Orbax calls only. Real failures are exceptions, which callers turn into one-line
    errors; ERROR records and every other logger pass."""
    import logging

    drop, logger = _DropNotices(), logging.getLogger("absl")
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def first_line(e: BaseException) -> str:
    """``"Type: first line of the message"`` (at most 400 characters) for one-line errors."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"[:400]


def is_step_dir(path: pathlib.Path) -> bool:
    return (path / STATE).is_dir() and (path / MODEL_CONFIG).is_dir()


def steps(path: pathlib.Path) -> list[int]:
    """The complete step directories of a manager directory, in increasing order."""
    return sorted(int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit() and is_step_dir(p))


def best_of(path: pathlib.Path, metric: str = "loss") -> int | None:
    """The step with the lowest ``metric`` among a best directory's checkpoints (None without metrics)."""
    import orbax.checkpoint as ocp

    if not steps(path):
        return None
    options = ocp.CheckpointManagerOptions(read_only=True, best_fn=lambda m: float(m[metric]), best_mode="min")
    try:
        with quiet_orbax(), ocp.CheckpointManager(path.absolute(), options=options) as manager:
            return manager.best_step()
    except Exception:  # noqa: BLE001 - unreadable metrics: fall back to the latest step
        return None


def resolve_step_dir(directory: str | pathlib.Path) -> pathlib.Path:
    """The step directory meant by ``directory``: itself, a manager's latest step, or a work directory's best
    checkpoint (lowest validation loss), else its latest periodic one."""
    path = pathlib.Path(directory)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {path} does not exist")
    if is_step_dir(path):
        return path
    if (path / BEST_DIR).is_dir() or (path / PERIODIC_DIR).is_dir():
        if (path / BEST_DIR).is_dir():
            best = best_of(path / BEST_DIR)
            if best is not None:
                return path / BEST_DIR / str(best)
        if (path / PERIODIC_DIR).is_dir() and steps(path / PERIODIC_DIR):
            return path / PERIODIC_DIR / str(steps(path / PERIODIC_DIR)[-1])
        raise CheckpointError(f"work directory {path} holds no complete checkpoint")
    found = steps(path)
    if not found:
        raise CheckpointError(f"{path} is neither a mantra_jax work directory, a checkpoint manager directory nor "
                              f"a checkpoint step directory")
    if path.name == BEST_DIR and best_of(path) is not None:
        return path / str(best_of(path))
    return path / str(found[-1])


MAX_JSON_ITEM_BYTES = 1 << 20  # model_config / layout / loop: JSON of a few kB
MAX_STEP_FILES = 100_000


def check_step_dir_form(step_dir: pathlib.Path) -> None:
    """Refuses, before Orbax reads anything, a step directory that reaches outside itself or holds what Orbax
    never writes: symbolic links, FIFOs, devices or sockets anywhere under it, a JSON item over
    ``MAX_JSON_ITEM_BYTES``, or more than ``MAX_STEP_FILES`` entries. One-line CheckpointError naming it."""
    import os
    import stat

    count = 0
    for top, dirs, files in os.walk(step_dir, followlinks=False):
        for name in dirs + files:
            count += 1
            if count > MAX_STEP_FILES:
                raise CheckpointError(f"checkpoint {step_dir} holds more than {MAX_STEP_FILES} files")
            entry = pathlib.Path(top) / name
            mode = entry.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise CheckpointError(f"checkpoint {step_dir}: {entry.relative_to(step_dir)} is a symbolic link "
                                      f"(to {os.readlink(entry)}); checkpoints may not link outside themselves")
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise CheckpointError(f"checkpoint {step_dir}: {entry.relative_to(step_dir)} is not a regular "
                                      f"file or folder")
    for item in (MODEL_CONFIG, LAYOUT, LOOP):
        folder = step_dir / item
        if folder.is_dir():
            for f in folder.rglob("*"):
                if f.is_file() and f.stat().st_size > MAX_JSON_ITEM_BYTES:
                    raise CheckpointError(f"checkpoint {step_dir}: {f.relative_to(step_dir)} has "
                                          f"{f.stat().st_size} bytes, more than a {item} item ever holds")


def _read_step(step_dir: pathlib.Path) -> tuple[Any, Any]:
    """(model config, state tree as host numpy arrays) of one step directory, through Orbax."""
    import jax
    import orbax.checkpoint as ocp

    config = ocp.Checkpointer(ocp.JsonCheckpointHandler()).restore(step_dir.absolute() / MODEL_CONFIG)
    checkpointer = ocp.PyTreeCheckpointer()
    path = step_dir.absolute() / STATE
    # Restore as host numpy arrays: the saving run's devices and shardings need not exist here.
    meta = checkpointer.metadata(path)
    meta = getattr(meta, "item_metadata", meta)
    meta = getattr(meta, "tree", meta)
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), meta)
    return config, checkpointer.restore(path, restore_args=restore_args)


def restore_inference_variables(directory: str | pathlib.Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model_config, {"params", "batch_stats"})`` with numpy leaves from a training checkpoint; see
    ``resolve_step_dir`` for what ``directory`` may be. Raises CheckpointError (or a subclass)."""
    import jax

    step_dir = resolve_step_dir(directory)
    check_step_dir_form(step_dir)
    where = f"checkpoint {step_dir}"
    try:
        with quiet_orbax():
            config, tree = _read_step(step_dir)
    except Exception as e:  # noqa: BLE001
        raise CheckpointCorruptError(f"{where} cannot be read (corrupt or incomplete): {first_line(e)}") from e
    if not isinstance(tree, Mapping) or "params" not in tree:
        raise CheckpointCorruptError(f"{where}: the state item has no params")
    variables = {"params": jax.tree.map(np.asarray, tree["params"]),
                 "batch_stats": jax.tree.map(np.asarray, tree.get("batch_stats") or {})}
    return config, variables
