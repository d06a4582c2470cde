"""Post-update projections as an optax transformation applied after the optimiser.

``constrain(table, frozen=())`` is a ``GradientTransformation`` whose ``update(updates, state, params)``
turns the optimiser's updates ``u`` into ``project(params + u) - params`` for every parameter a pattern of
``table`` matches (``mantra_jax.models.constraints``), and leaves the others' updates alone, so that
``optax.apply_updates`` lands on the projected weights, as Keras' kernel constraints do. It needs
``params``, keeps no state, and is checked against the params' tree on ``init`` and ``update``: a pattern
that matches no parameter is a ValueError naming it.

Parameters under the top-level names in ``frozen`` keep their updates unchanged (zero for a frozen
module): a frozen feature extractor must not move at all, and re-projecting an already projected Bayar
kernel is not exactly the identity (it divides by ``1 + 1e-7``).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import jax
import optax

from mantra_jax.models.constraints import RELEASE_CONSTRAINTS, ConstraintTable, Projection


def _name(path: Sequence[Any]) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def match_constraints(params: Any, table: ConstraintTable) -> dict[str, Projection]:
    """``{parameter path: projection}`` for every parameter of ``params`` a pattern of ``table`` matches.

    Raises ValueError when a pattern matches no parameter or a parameter matches two patterns.
    """
    names = [_name(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
    out: dict[str, Projection] = {}
    for pattern, project in table.items():
        hits = [n for n in names if re.fullmatch(pattern, n)]
        if not hits:
            top = sorted({n.split("/")[0] for n in names})
            raise ValueError(f"constraint {pattern!r} matches no parameter (top-level modules: {top}); was a "
                             f"module renamed? Update the model's constraint table")
        for n in hits:
            if n in out:
                raise ValueError(f"parameter {n} matches more than one constraint pattern")
            out[n] = project
    return out


def constrain(table: ConstraintTable = RELEASE_CONSTRAINTS, frozen: Sequence[str] = ()) -> optax.GradientTransformation:
    """See the module docstring."""
    frozen = tuple(frozen)
    table = dict(table)

    def init(params: Any) -> optax.EmptyState:
        match_constraints(params, table)
        return optax.EmptyState()

    def update(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        if params is None:
            raise ValueError("constrain needs the params in update(updates, state, params)")
        matched = match_constraints(params, table)

        def one(path: Sequence[Any], u: Any, p: Any) -> Any:
            name = _name(path)
            if name not in matched or name.split("/")[0] in frozen:
                return u
            return matched[name](p + u) - p

        return jax.tree_util.tree_map_with_path(one, updates, params), state

    return optax.GradientTransformation(init, update)


