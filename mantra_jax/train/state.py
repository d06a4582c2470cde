"""The train state: every array a training run needs to continue exactly, as one pytree.

``TrainState`` holds the step, the model variables (``params`` and ``batch_stats``), the optimiser state
and the learning-rate plateau state (no PRNG key: no layer of the models is stochastic). It holds no functions: the model, the loss and the
optimiser are passed to the step builders (``mantra_jax.train.step``), so the state is plain data that
Orbax saves and restores.

Initialisation uses an ``rbg`` key: with the default threefry key XLA takes much longer to compile the
initialisers on CPU (measured: README, Benchmarks), and the initial weights need no particular generator.
Only the shapes of ``example_shape`` matter beyond its channel count (no layer depends on the image size),
so a small one keeps initialisation cheap.
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


def create_train_state(variables: dict[str, Any], tx: optax.GradientTransformation, seed: int = 0,
                       opt_state: optax.OptState | None = None) -> TrainState:
    """A step-0 state from model variables (``{"params", "batch_stats"?}``) and an optimiser. ``seed`` is
    not used (the state holds no PRNG key; initialisation draws with ``init_variables``'s seed); it stays
    for existing callers. ``opt_state``: the optimiser state to start from (e.g. a previous run's Adam
    moments and count; default ``tx.init(params)``); it must have the tree, shapes and dtypes that
    ``tx.init(params)`` gives (ValueError otherwise)."""
    if "params" not in variables:
        raise ValueError(f"variables must contain 'params', got keys {sorted(variables)}")
    unknown = set(variables) - {"params", "batch_stats"}
    if unknown:
        raise ValueError(f"unexpected variable collections {sorted(unknown)}; expected params and batch_stats")
    params = variables["params"]
    if opt_state is None:
        opt_state = tx.init(params)
    else:
        _check_opt_state(jax.eval_shape(tx.init, params), opt_state)
    return TrainState(step=jnp.asarray(0, jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=opt_state,
                      plateau=plateau_init())


def _check_opt_state(want: Any, got: Any) -> None:
    """ValueError unless ``got`` has the tree of ``want`` and each leaf its shape and dtype."""
    if jax.tree.structure(want) != jax.tree.structure(got):
        raise ValueError("opt_state does not have the tree of this optimiser's state for these params")
    for (path, w), g in zip(jax.tree_util.tree_flatten_with_path(want)[0], jax.tree.leaves(got)):
        if tuple(w.shape) != tuple(jnp.shape(g)) or jnp.dtype(w.dtype) != jnp.result_type(g):
            raise ValueError(f"opt_state{jax.tree_util.keystr(path)}: {jnp.result_type(g)}{list(jnp.shape(g))}, "
                             f"expected {w.dtype}{list(w.shape)}")
