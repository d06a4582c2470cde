"""The models' constrained weights: which parameters get which post-update projection.

Keras applies kernel constraints after each optimiser step; the release constrains three weights. Each
module declares its own, as ``pattern -> projection`` where a pattern is a regular expression matched in
full against a parameter's ``/``-joined path inside the module:

| module (name in the model)  | pattern                 | projection (``mantra_jax.ops.constraints``) |
|-----------------------------|-------------------------|---------------------------------------------|
| FeatureExtractor (Featex)   | ``b1c1/bayar_kernel``   | Bayar (centre -1, other taps sum to 1)      |
| AnomalyDetector (LADN)      | ``outlierTrans/kernel`` | unit L2 norm per output filter              |
| AnomalyDetector (LADN)      | ``glbStd/min_std``      | non-negative                                |

``constraint_table(model)`` composes them into the whole model's table (``Featex/b1c1/bayar_kernel`` ...):
``ManTraNet`` carries all three, ``IMCClassifier`` the feature extractor's. Training applies a table with
``mantra_jax.train.projections.constrain``, where a pattern matching no parameter is an error: renaming a
module cannot silently drop a constraint.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax.numpy as jnp

from mantra_jax.models.featex import FeatureExtractor
from mantra_jax.models.ladn import AnomalyDetector
from mantra_jax.ops.constraints import bayar_project, non_negative_project, unit_norm_project

Projection = Callable[[jnp.ndarray], jnp.ndarray]
ConstraintTable = Mapping[str, Projection]

FEATEX_CONSTRAINTS: dict[str, Projection] = {"b1c1/bayar_kernel": bayar_project}
LADN_CONSTRAINTS: dict[str, Projection] = {f"{AnomalyDetector.OUTLIER_TRANS}/kernel": unit_norm_project,
                                           "glbStd/min_std": non_negative_project}
FEATEX, LADN = FeatureExtractor.SCOPE, AnomalyDetector.SCOPE


def under(prefix: str, table: ConstraintTable) -> dict[str, Projection]:
    """``table`` for a module mounted as ``prefix`` in its parent."""
    return {f"{prefix}/{pattern}": project for pattern, project in table.items()}


RELEASE_CONSTRAINTS: dict[str, Projection] = {**under(FEATEX, FEATEX_CONSTRAINTS), **under(LADN, LADN_CONSTRAINTS)}
BAYAR_FIRST_LAYERS = ("combined", "bayar")  # the first layers (models.first_layer) holding a bayar_kernel


def featex_constraints(first_layer: str = "combined") -> dict[str, Projection]:
    """The feature extractor's table for its first layer: the Bayar projection where it has a Bayar kernel
    (Table 3's ``plain3`` / ``plain5`` / ``srm`` first layers have nothing constrained)."""
    return dict(FEATEX_CONSTRAINTS) if first_layer in BAYAR_FIRST_LAYERS else {}


def constraint_table(model: Any) -> dict[str, Projection]:
    """The table of ``model``: its own ``constraints`` attribute when it declares one, else by its kind
    (see the module docstring); any other module is taken to carry the release's names
    (``RELEASE_CONSTRAINTS``; give ``constraints={}`` to the train step for a model without them)."""
    from mantra_jax.models.mantranet import IMCClassifier, ManTraNet

    own = getattr(model, "constraints", None)
    if own is not None:
        return dict(own() if callable(own) else own)
    if isinstance(model, ManTraNet):
        return {**under(FEATEX, featex_constraints(model.featex.first_layer)), **under(LADN, LADN_CONSTRAINTS)}
    if isinstance(model, IMCClassifier):
        return under(FEATEX, featex_constraints(model.featex.first_layer))
    if isinstance(model, FeatureExtractor):
        return featex_constraints(model.config.first_layer)
    if isinstance(model, AnomalyDetector):
        return dict(LADN_CONSTRAINTS)
    return dict(RELEASE_CONSTRAINTS)
