"""The models' constrained weights: which parameters get which post-update projection.

Keras applies kernel constraints after each optimiser step; the release constrains three weights. Each
module class declares its own (``own_constraints()``), as ``pattern -> projection`` where a pattern is a
regular expression matched in full against a parameter's ``/``-joined path inside the module, and lists
its submodules (``submodules()``: (scope, module) pairs); ``module_table`` walks that tree:

| module (scope in its parent)     | pattern                 | projection (``mantra_jax.ops.constraints``) |
|----------------------------------|-------------------------|---------------------------------------------|
| FirstLayer (b1c1, in Featex)     | ``bayar_kernel``        | Bayar (centre -1, other taps sum to 1)      |
| AnomalyDetector (LADN)           | ``outlierTrans/kernel`` | unit L2 norm per output filter              |
| AnomalyDetector (LADN)           | ``glbStd/min_std``      | non-negative                                |

``constraint_table(model)`` is the whole model's table (``Featex/b1c1/bayar_kernel`` ...): ``ManTraNet``
carries all three, ``IMCClassifier`` the feature extractor's (none for a first layer without a Bayar
kernel). Training applies a table with ``mantra_jax.train.projections.constrain``, where a pattern matching
no parameter is an error: renaming a module cannot silently drop a constraint.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax.numpy as jnp

from mantra_jax.models.featex import FeatureExtractor
from mantra_jax.models.ladn import AnomalyDetector

Projection = Callable[[jnp.ndarray], jnp.ndarray]
ConstraintTable = Mapping[str, Projection]

FEATEX, LADN = FeatureExtractor.SCOPE, AnomalyDetector.SCOPE


def under(prefix: str, table: ConstraintTable) -> dict[str, Projection]:
    """``table`` for a module mounted as ``prefix`` in its parent."""
    return {f"{prefix}/{pattern}": project for pattern, project in table.items()}


def module_table(module: Any) -> dict[str, Projection]:
    """The table of a module of this package: its ``own_constraints()``, then each of its ``submodules()``'
    tables under their scopes (a module without either contributes nothing)."""
    own = getattr(module, "own_constraints", None)
    table = dict(own()) if own is not None else {}
    for scope, child in getattr(module, "submodules", tuple)():
        table.update(under(scope, module_table(child)))
    return table


FEATEX_CONSTRAINTS: dict[str, Projection] = module_table(FeatureExtractor(parent=None))  # the release's
LADN_CONSTRAINTS: dict[str, Projection] = module_table(AnomalyDetector(parent=None))
RELEASE_CONSTRAINTS: dict[str, Projection] = {**under(FEATEX, FEATEX_CONSTRAINTS), **under(LADN, LADN_CONSTRAINTS)}


def constraint_table(model: Any) -> dict[str, Projection]:
    """The table of ``model``: its own ``constraints`` attribute when it declares one, else the walk of its
    module tree (``module_table``, for a module that declares ``own_constraints`` or ``submodules``); any
    other module is taken to carry the release's names (``RELEASE_CONSTRAINTS``; give ``constraints={}`` to
    the train step for a model without them)."""
    own = getattr(model, "constraints", None)
    if own is not None:
        return dict(own() if callable(own) else own)
    if hasattr(model, "own_constraints") or hasattr(model, "submodules"):
        return module_table(model)
    return dict(RELEASE_CONSTRAINTS)
