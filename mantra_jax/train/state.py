"""The train state: every array a training run needs to continue exactly, as one pytree.

``TrainState`` holds the step, the model variables (``params`` and ``batch_stats``), the optimiser state
and the learning-rate plateau state (no PRNG key: no layer of the models is stochastic). It holds no functions: the model, the loss and the
optimiser are passed to the step builders (``mantra_jax.train.step``), so the state is plain data that
Orbax saves and restores.

Initialisation uses an ``rbg`` key: with the default threefry key XLA takes about 7x longer to compile the
initialisers on CPU (30 s against 4 s for the tiny model), and the initial weights need no particular
generator. Only the shapes of ``example_shape`` matter beyond its channel count (no layer depends on the
image size), so a small one keeps initialisation cheap.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from mantra_jax.train.plateau import PlateauState, plateau_init

INIT_SHAPE = (1, 8, 8, 3)


@flax.struct.dataclass
class TrainState:
    """step: int32 (). params / batch_stats: the model's collections (batch_stats may be {}).
    opt_state: the optimiser's state for ``params``. plateau: see ``mantra_jax.train.plateau``."""

    step: jnp.ndarray
    params: Any
    batch_stats: Any
    opt_state: optax.OptState
    plateau: PlateauState


def init_variables(model: Any, seed: int, example_shape: tuple[int, ...] = INIT_SHAPE) -> dict[str, Any]:
    """``{"params", "batch_stats"}`` of a freshly initialised ``model`` (a Linen module taking images)."""
    if len(example_shape) != 4 or example_shape[-1] != 3:
        raise ValueError(f"example_shape must be (B, H, W, 3), got {example_shape}")
    key = jax.random.key(int(seed), impl="rbg")
    variables = jax.jit(model.init)(key, jnp.zeros(example_shape, jnp.float32))
    return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


def create_train_state(variables: dict[str, Any], tx: optax.GradientTransformation, seed: int = 0) -> TrainState:
    """A step-0 state from model variables (``{"params", "batch_stats"?}``) and an optimiser. ``seed`` is
    not used (the state holds no PRNG key; initialisation draws with ``init_variables``'s seed); it stays
    for existing callers."""
    if "params" not in variables:
        raise ValueError(f"variables must contain 'params', got keys {sorted(variables)}")
    unknown = set(variables) - {"params", "batch_stats"}
    if unknown:
        raise ValueError(f"unexpected variable collections {sorted(unknown)}; expected params and batch_stats")
    params = variables["params"]
    return TrainState(step=jnp.asarray(0, jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                      plateau=plateau_init())
