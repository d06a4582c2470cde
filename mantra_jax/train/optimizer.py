"""Optimisers: the paper's Adam, and per-module optimisers over the top-level parameter subtrees.

Paper: Adam with learning rate 1e-4 (beta and epsilon unstated: optax's defaults 0.9 / 0.999 / 1e-8).
The learning-rate halving on a validation plateau is not part of the optimiser: the train step scales the
updates by ``TrainState.plateau.scale`` (see ``mantra_jax.train.plateau``).

``by_module`` routes each top-level subtree of the params (``Featex``, ``LADN``, ``IMCHead``) to its own
optimiser with ``optax.multi_transform``; a module mapped to ``None`` is frozen (``optax.set_to_zero``:
exactly zero updates, and no optimiser state). ``per_group_adam`` is the same as data: a learning rate per
top-level parameter group, zero meaning frozen (big_vision's per-group schedules in spirit).
"""

from __future__ import annotations

from typing import Any, Mapping

import optax

PAPER_LEARNING_RATE = 1e-4
DEFAULT = "default"


def adam(learning_rate: float = PAPER_LEARNING_RATE) -> optax.GradientTransformation:
    """The paper's optimiser: Adam at ``learning_rate`` (no schedule; see the module docstring)."""
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    return optax.adam(learning_rate)


def module_labels(params: Mapping[str, Any], modules: Mapping[str, Any]) -> dict[str, Any]:
    """Label tree for ``optax.multi_transform``: every leaf of ``params[name]`` gets ``name`` when ``name`` is
    in ``modules``, else ``DEFAULT``."""
    import jax

    return {name: jax.tree.map(lambda _, n=name: n if n in modules else DEFAULT, sub) for name, sub in params.items()}


def by_module(modules: Mapping[str, optax.GradientTransformation | None],
              default: optax.GradientTransformation) -> optax.GradientTransformation:
    """One optimiser per top-level module; ``None`` freezes it; other modules use ``default``.

    ``modules`` keys are top-level parameter names, e.g. ``{"Featex": adam(5e-5)}``.
    """
    if DEFAULT in modules:
        raise ValueError(f"{DEFAULT!r} is reserved and cannot name a module")
    transforms = {DEFAULT: default}
    for name, tx in modules.items():
        transforms[name] = optax.set_to_zero() if tx is None else tx

    def labels(params: Mapping[str, Any]) -> dict[str, Any]:
        missing = sorted(set(modules) - set(params))
        if missing:
            raise ValueError(f"by_module: no top-level parameter subtree named {missing}; have {sorted(params)}")
        return module_labels(params, modules)

    return optax.multi_transform(transforms, labels)


def frozen_groups(learning_rates: Mapping[str, float]) -> tuple[str, ...]:
    """The parameter groups whose learning rate is zero."""
    return tuple(name for name, lr in learning_rates.items() if float(lr) == 0.0)


def per_group_adam(learning_rates: Mapping[str, float], default: float = PAPER_LEARNING_RATE
                   ) -> optax.GradientTransformation:
    """Adam with a learning rate per top-level parameter group (``{"Featex": 5e-5}``); a rate of zero
    freezes the group (``optax.set_to_zero``); groups not named use ``default``. Without groups, plain
    ``adam(default)``."""
    for name, lr in learning_rates.items():
        if not float(lr) >= 0:
            raise ValueError(f"learning rate of group {name!r} must be >= 0 (0: frozen), got {lr}")
    if not learning_rates:
        return adam(default)
    return by_module({name: None if float(lr) == 0.0 else adam(float(lr)) for name, lr in learning_rates.items()},
                     adam(default))
