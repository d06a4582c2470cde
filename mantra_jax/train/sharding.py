"""Data parallelism: a 1-D mesh over all devices, batch sharded on its "data" axis, state replicated.

``jit_train_step`` / ``jit_eval_step`` wrap the pure steps in ``jax.jit`` with ``NamedSharding``s: the
train state replicated (``P()``), every batch entry split along its first axis (``P("data")``). XLA's
partitioner turns the batch reductions (loss mean, batch-norm moments, gradients) into all-reduces, so
the result equals the single-device one up to floating-point summation order.

Multi-host: join the runtime first (``mantra_jax.distributed.runtime``; with no arguments JAX detects
the cluster, e.g. SLURM or TPU pods); each process then feeds its own part of the global batch
(``global batch / process_count`` examples) and ``shard_batch`` assembles the global array with
``jax.make_array_from_process_local_data``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_mesh(devices: Sequence[Any] | None = None) -> Mesh:
    """A 1-D mesh named ``"data"`` over ``devices`` (default: all devices of all processes)."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("make_mesh needs at least one device")
    return Mesh(np.asarray(devices, dtype=object), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def local_batch_size(global_batch_size: int, mesh: Mesh) -> int:
    """This process's share of the global batch; raises when it does not split evenly over the devices."""
    n = mesh.devices.size
    if global_batch_size % n:
        raise ValueError(f"batch size {global_batch_size} is not divisible by the {n} devices of the mesh")
    if global_batch_size % jax.process_count():
        raise ValueError(f"batch size {global_batch_size} is not divisible by {jax.process_count()} processes")
    return global_batch_size // jax.process_count()


def shard_batch(batch: Mapping[str, Any], mesh: Mesh) -> dict[str, jax.Array]:
    """This process's part of a batch (dict of numpy arrays) -> global arrays sharded along "data"."""
    sharding = batch_sharding(mesh)
    out = {}
    for key, value in batch.items():
        value = np.asarray(value)
        global_shape = (value.shape[0] * jax.process_count(),) + value.shape[1:]
        local_batch_size(global_shape[0], mesh)
        out[key] = jax.make_array_from_process_local_data(sharding, value, global_shape)
    return out


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Copies every leaf of ``tree`` (same values on all processes) replicated onto the mesh, through host
    memory: always fresh buffers, since the jitted train step donates the state and must not delete the
    caller's arrays (``device_put`` alone may reuse a buffer already on a mesh device)."""
    return jax.device_put(jax.device_get(tree), replicated(mesh))


def jit_train_step(step: Callable, mesh: Mesh, donate: bool = True) -> Callable:
    """jit of ``step(state, batch) -> (state, metrics)``: state replicated (donated), batch on "data"."""
    rep = replicated(mesh)
    return jax.jit(step, in_shardings=(rep, batch_sharding(mesh)), out_shardings=(rep, rep),
                   donate_argnums=(0,) if donate else ())


def jit_eval_step(step: Callable, mesh: Mesh) -> Callable:
    """jit of ``step(state, batch) -> sums``: state replicated, batch on "data", sums replicated."""
    rep = replicated(mesh)
    return jax.jit(step, in_shardings=(rep, batch_sharding(mesh)), out_shardings=rep)
