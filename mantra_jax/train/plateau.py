"""Learning-rate reduction on a validation plateau (paper: "halved if validation loss fails to improve for
20 epochs").

The state is three scalars kept in the train state (so it is checkpointed with it): the best value seen,
the number of evaluations since it improved, and the current learning-rate scale. ``plateau_update`` is
called once per evaluation (not per training step, unlike ``optax.contrib.reduce_on_plateau`` which reads a
value at every update); the train step multiplies the optimiser's updates by ``scale``, which for Adam is
the same as multiplying its learning rate.

Rule: a value improves when ``value < best - min_delta`` (NaN never improves). After ``patience``
consecutive evaluations without improvement the scale is multiplied by ``factor`` and the count restarts,
so a plateau of ``2 * patience`` evaluations halves twice.
"""

from __future__ import annotations

import flax.struct
import jax.numpy as jnp

PAPER_PATIENCE = 20  # evaluations (the paper: epochs) without improvement before the scale is cut
PAPER_FACTOR = 0.5  # "halved"


@flax.struct.dataclass
class PlateauState:
    """best: float32 () lowest value so far (inf at start). bad_evals: int32 () evaluations since the last
    improvement. scale: float32 () learning-rate multiplier. reductions: int32 () times the scale was cut."""

    best: jnp.ndarray
    bad_evals: jnp.ndarray
    scale: jnp.ndarray
    reductions: jnp.ndarray


def plateau_init() -> PlateauState:
    return PlateauState(best=jnp.asarray(jnp.inf, jnp.float32), bad_evals=jnp.asarray(0, jnp.int32),
                        scale=jnp.asarray(1.0, jnp.float32), reductions=jnp.asarray(0, jnp.int32))


def plateau_update(state: PlateauState, value: float | jnp.ndarray, *, patience: int = PAPER_PATIENCE,
                   factor: float = PAPER_FACTOR,
                   min_delta: float = 0.0) -> PlateauState:
    """The state after one evaluation that gave ``value`` (e.g. the validation loss). Pure; jit-able."""
    if int(patience) != patience or patience < 1:
        raise ValueError(f"patience must be a positive integer, got {patience}")
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor must be in (0, 1), got {factor}")
    if min_delta < 0:
        raise ValueError(f"min_delta must be >= 0, got {min_delta}")
    value = jnp.asarray(value, jnp.float32)
    if value.shape != ():
        raise ValueError(f"plateau value must be a scalar, got shape {value.shape}")
    improved = value < state.best - min_delta  # False for NaN
    bad = jnp.where(improved, 0, state.bad_evals + 1)
    reduce = bad >= patience
    return PlateauState(
        best=jnp.where(improved, value, state.best),
        bad_evals=jnp.where(reduce, 0, bad).astype(jnp.int32),
        scale=jnp.where(reduce, state.scale * factor, state.scale).astype(jnp.float32),
        reductions=(state.reductions + reduce.astype(jnp.int32)).astype(jnp.int32),
    )
