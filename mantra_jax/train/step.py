"""Pure train and eval steps, built from a model, a loss and an optimiser passed in.

``make_train_step(model, loss_fn, tx, frozen=..., constraints=...)`` returns ``step(state, batch) -> (state,
metrics)``: forward in train mode (batch statistics, moving statistics updated), gradient of the loss, the
optimiser's updates scaled by the plateau scale, then the model's post-update projections as an optax
transformation (``mantra_jax.train.projections.constrain`` of ``constraint_table(model)``), the update.
Top-level modules in ``frozen`` enter the loss through ``stop_gradient`` (no backward pass through them,
zero gradients) and are skipped by the projections; pair them with an optimiser that freezes them (see
``mantra_jax.train.end_to_end``).

Batches may carry uint8 images (and masks) as the loaders ship them: ``device_inputs`` turns them into the
model's float32 inputs inside the jitted step, with the operations of ``mantra_jax.io.images.preprocess``.

``micro_batches=k`` (gradient accumulation): the batch is split into k equal parts, the gradients of the
parts are summed in a ``lax.scan`` (one part's activations in memory at a time) and averaged, then one
optimiser update is made: the same global batch as ``k=1`` with about 1/k of its activation memory. Batch
norm then sees batch statistics of one part at a time and updates its moving statistics k times per step,
so the result is close to, not equal to, ``k=1``.

``make_eval_step(model, task)`` returns ``step(state, batch) -> sums``: forward in eval mode (moving
statistics) and the task's additive validation sums. It returns no state: evaluation changes nothing.

Both are plain functions of arrays: jit and shard them with ``mantra_jax.train.sharding``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mantra_jax.io.images import preprocess
from mantra_jax.models.constraints import ConstraintTable, constraint_table
from mantra_jax.train.projections import constrain
from mantra_jax.train.state import TrainState
from mantra_jax.train.tasks import Task

Batch = Mapping[str, jnp.ndarray]
LossFn = Callable[[Mapping[str, jnp.ndarray], Batch], jnp.ndarray]


_PREPROCESSED = preprocess(np.arange(256, dtype=np.uint8).reshape(256, 1, 1).repeat(3, axis=2))[:, 0, 0]


def device_inputs(batch: Batch) -> dict[str, jnp.ndarray]:
    """``batch`` with a uint8 ``image`` (B, H, W, 3) mapped to float32 ``x / 255 * 2 - 1`` (as
    ``preprocess``) and a uint8 ``mask`` to float32 {0, 1}; float entries pass unchanged."""
    out = dict(batch)
    image = out["image"]
    if image.dtype == jnp.uint8:  # a 256-entry table of preprocess's values: bit-equal to it whatever XLA
        out["image"] = jnp.asarray(_PREPROCESSED)[image.astype(jnp.int32)]  # makes of a division
    if "mask" in out and out["mask"].dtype == jnp.uint8:
        out["mask"] = out["mask"].astype(jnp.float32)
    return out


def _split(batch: Batch, k: int) -> Batch:
    """(B, ...) -> (k, B/k, ...): part j holds samples j, j + k, ... (the sharded batch axis stays whole)."""
    def part(a: jnp.ndarray) -> jnp.ndarray:
        if a.shape[0] % k:
            raise ValueError(f"batch of {a.shape[0]} does not split into {k} micro-batches")
        return jnp.swapaxes(a.reshape((a.shape[0] // k, k) + a.shape[1:]), 0, 1)

    return {key: part(v) for key, v in batch.items()}


def _variables(params: Any, batch_stats: Any) -> dict[str, Any]:
    return {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}


def make_train_step(model: Any, loss_fn: LossFn, tx: optax.GradientTransformation, *,
                    frozen: Sequence[str] = (), constraints: ConstraintTable | str | None = "model",
                    micro_batches: int = 1,
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jnp.ndarray]]]:
    """See the module docstring. ``constraints``: ``"model"`` (default) for the model's own table
    (``mantra_jax.models.constraints.constraint_table``), a table, or None for no projections.
    Metrics: ``loss``, ``grad_norm`` (of the trainable gradients), ``lr_scale``."""
    frozen = tuple(frozen)
    table = constraint_table(model) if constraints == "model" else constraints
    project = None if table is None else constrain(table, frozen)
    if int(micro_batches) < 1:
        raise ValueError(f"micro_batches must be >= 1, got {micro_batches}")
    k = int(micro_batches)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jnp.ndarray]]:
        missing = [k for k in frozen if k not in state.params]
        if missing:
            raise ValueError(f"frozen modules {missing} are not in the params ({sorted(state.params)})")

        def loss_and_stats(params: Any, batch_stats: Any, part: Batch) -> tuple[jnp.ndarray, Any]:
            params = {n: (jax.lax.stop_gradient(v) if n in frozen else v) for n, v in params.items()}
            outputs, mutated = model.apply(_variables(params, batch_stats), part["image"], train=True,
                                           mutable=["batch_stats"])
            return loss_fn(outputs, part), mutated.get("batch_stats", batch_stats)

        grad_fn = jax.value_and_grad(loss_and_stats, has_aux=True)
        inputs = device_inputs(batch)
        if k == 1:
            (loss, batch_stats), grads = grad_fn(state.params, state.batch_stats, inputs)
        else:
            def accumulate(carry, part):
                loss_sum, grad_sum, stats = carry
                (part_loss, stats), part_grads = grad_fn(state.params, stats, part)
                return (loss_sum + part_loss, jax.tree.map(jnp.add, grad_sum, part_grads), stats), None

            zeros = jax.tree.map(jnp.zeros_like, state.params)
            (loss, grads, batch_stats), _ = jax.lax.scan(
                accumulate, (jnp.zeros((), jnp.float32), zeros, state.batch_stats), _split(inputs, k))
            loss, grads = loss / k, jax.tree.map(lambda g: g / k, grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        scale = state.plateau.scale
        updates = jax.tree.map(lambda u: u * scale.astype(u.dtype), updates)
        if project is not None:
            updates, _ = project.update(updates, optax.EmptyState(), state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                                  opt_state=opt_state)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "lr_scale": scale}
        return new_state, metrics

    return step


def make_eval_step(model: Any, task: Task) -> Callable[[TrainState, Batch], dict[str, jnp.ndarray]]:
    """See the module docstring."""

    def step(state: TrainState, batch: Batch) -> dict[str, jnp.ndarray]:
        batch = device_inputs(batch)
        outputs = model.apply(_variables(state.params, state.batch_stats), batch["image"], train=False)
        return task.eval_sums(outputs, batch)

    return step
