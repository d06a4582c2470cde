"""The release's post-update projections of constrained weights, applied to params after every update.

Keras applies kernel constraints after each optimiser step; the release constrains three weights:

| parameter path                 | projection                                  |
|--------------------------------|---------------------------------------------|
| ``Featex/b1c1/bayar_kernel``   | Bayar (centre -1, other taps sum to 1)      |
| ``LADN/outlierTrans/kernel``   | unit L2 norm per output filter              |
| ``LADN/glbStd/min_std``        | non-negative                                |

Paths absent from a model (the IMC classifier has no ``LADN``) are skipped. Top-level subtrees named in
``skip`` are left untouched: a frozen feature extractor must not move at all, and re-projecting an
already projected Bayar kernel is not exactly the identity (it divides by ``1 + 1e-7``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax.numpy as jnp

from mantra_jax.ops.constraints import bayar_project, non_negative_project, unit_norm_project

PROJECTIONS: dict[tuple[str, ...], Callable[[jnp.ndarray], jnp.ndarray]] = {
    ("Featex", "b1c1", "bayar_kernel"): bayar_project,
    ("LADN", "outlierTrans", "kernel"): unit_norm_project,
    ("LADN", "glbStd", "min_std"): non_negative_project,
}


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if not hasattr(tree, "get"):
            return None
        tree = tree.get(name)
        if tree is None:
            return None
    return tree


def _set(tree: dict, path: tuple[str, ...], value: Any) -> dict:
    """A copy of nested dict ``tree`` with ``path`` replaced (the untouched branches are shared)."""
    if not path:
        return value
    out = dict(tree)
    out[path[0]] = _set(tree[path[0]], path[1:], value)
    return out


def project_params(params: dict[str, Any], skip: Sequence[str] = ()) -> dict[str, Any]:
    """``params`` with every constrained weight projected, except under the top-level names in ``skip``."""
    for path, project in PROJECTIONS.items():
        if path[0] in skip:
            continue
        leaf = _get(params, path)
        if leaf is not None:
            params = _set(params, path, project(leaf))
    return params
