"""Checking model variables read from any weight file against the model that is to use them."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from mantra_jax.errors import CheckpointError
from mantra_jax.models.config import variable_shapes


def key_differences(want: Iterable[str], got: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(missing, extra)``: the sorted names of ``want`` not in ``got``, and of ``got`` not in ``want``."""
    want, got = set(want), set(got)
    return sorted(want - got), sorted(got - want)


def check_variables(model: Any, variables: Any, source: str = "checkpoint") -> Any:
    """Checks ``variables`` against ``model`` (tree, shapes, float dtypes, finite values); returns them as
    jax arrays in the model's dtypes. Raises CheckpointError naming ``source`` and the first bad variable."""
    import jax
    import jax.numpy as jnp

    want = variable_shapes(model)
    flat_want = {jax.tree_util.keystr(k): s for k, s in jax.tree_util.tree_leaves_with_path(want)}
    try:
        flat_got = {jax.tree_util.keystr(k): np.asarray(a) for k, a in jax.tree_util.tree_leaves_with_path(variables)}
    except Exception as e:  # noqa: BLE001 - a malformed tree of any kind
        raise CheckpointError(f"{source}: variables are not a tree of arrays ({e})") from None
    missing, extra = key_differences(flat_want, flat_got)
    if missing:
        raise CheckpointError(f"{source}: {len(missing)} variable(s) missing for this model, e.g. {missing[0]}")
    if extra:
        raise CheckpointError(f"{source}: {len(extra)} unexpected variable(s), e.g. {extra[0]}")
    for key, spec in flat_want.items():
        got = flat_got[key]
        if tuple(got.shape) != tuple(spec.shape):
            raise CheckpointError(f"{source}: variable {key} has shape {got.shape}, the model expects {spec.shape}")
        if got.dtype.kind != "f":
            raise CheckpointError(f"{source}: variable {key} has dtype {got.dtype}, expected floating point")
        if not np.all(np.isfinite(got)):
            raise CheckpointError(f"{source}: variable {key} holds NaN or infinite values")
    treedef = jax.tree_util.tree_structure(want)
    leaves = [jnp.asarray(flat_got[jax.tree_util.keystr(k)], s.dtype)
              for k, s in jax.tree_util.tree_leaves_with_path(want)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def parameter_count(variables: Any) -> dict[str, int]:
    """Numbers of scalars per top-level collection (``params``, ``batch_stats``) and in total."""
    import jax

    counts = {name: int(sum(np.prod(a.shape) for a in jax.tree.leaves(tree))) for name, tree in variables.items()}
    counts["total"] = sum(counts.values())
    return counts
