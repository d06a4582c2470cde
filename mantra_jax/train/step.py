"""Pure train and eval steps, built from a model, a loss and an optimiser passed in.

``make_train_step(model, loss_fn, tx, frozen=..., project=...)`` returns ``step(state, batch) -> (state,
metrics)``: forward in train mode (batch statistics, moving statistics updated), gradient of the loss, the
optimiser's updates scaled by the plateau scale, the update, then the post-update projections.
Top-level modules in ``frozen`` enter the loss through ``stop_gradient`` (no backward pass through them,
zero gradients) and are skipped by the projections; pair them with an optimiser that freezes them (see
``mantra_jax.train.end_to_end``).

``make_eval_step(model, task)`` returns ``step(state, batch) -> sums``: forward in eval mode (moving
statistics) and the task's additive validation sums. It returns no state: evaluation changes nothing.

Both are plain functions of arrays: jit and shard them with ``mantra_jax.train.sharding``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from mantra_jax.train.projections import project_params
from mantra_jax.train.state import TrainState
from mantra_jax.train.tasks import Task

Batch = Mapping[str, jnp.ndarray]
LossFn = Callable[[Mapping[str, jnp.ndarray], Batch], jnp.ndarray]


def _variables(params: Any, batch_stats: Any) -> dict[str, Any]:
    return {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}


def make_train_step(model: Any, loss_fn: LossFn, tx: optax.GradientTransformation, *,
                    frozen: Sequence[str] = (),
                    project: Callable[..., Any] | None = project_params,
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jnp.ndarray]]]:
    """See the module docstring. ``project(params, skip=frozen)`` defaults to the release's projections;
    pass None for none. Metrics: ``loss``, ``grad_norm`` (of the trainable gradients), ``lr_scale``."""
    frozen = tuple(frozen)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jnp.ndarray]]:
        missing = [k for k in frozen if k not in state.params]
        if missing:
            raise ValueError(f"frozen modules {missing} are not in the params ({sorted(state.params)})")

        def loss_and_stats(params: Any) -> tuple[jnp.ndarray, Any]:
            params = {k: (jax.lax.stop_gradient(v) if k in frozen else v) for k, v in params.items()}
            outputs, mutated = model.apply(_variables(params, state.batch_stats), batch["image"], train=True,
                                           mutable=["batch_stats"])
            return loss_fn(outputs, batch), mutated.get("batch_stats", state.batch_stats)

        (loss, batch_stats), grads = jax.value_and_grad(loss_and_stats, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        scale = state.plateau.scale
        updates = jax.tree.map(lambda u: u * scale.astype(u.dtype), updates)
        params = optax.apply_updates(state.params, updates)
        if project is not None:
            params = project(params, skip=frozen)
        new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                                  opt_state=opt_state)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "lr_scale": scale}
        return new_state, metrics

    return step


def make_eval_step(model: Any, task: Task) -> Callable[[TrainState, Batch], dict[str, jnp.ndarray]]:
    """See the module docstring."""

    def step(state: TrainState, batch: Batch) -> dict[str, jnp.ndarray]:
        outputs = model.apply(_variables(state.params, state.batch_stats), batch["image"], train=False)
        return task.eval_sums(outputs, batch)

    return step
