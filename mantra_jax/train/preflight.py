"""Memory preflight: compile the train step once before training and make it fit the device's memory.

``fit_step(build, state, batch, global_batch, limit_bytes)`` compiles ``build(micro_batches)`` (a jitted
train step, ``mantra_jax.train.step`` with gradient accumulation over ``micro_batches`` parts) for the
run's abstract state and batch, reads ``compiled.memory_analysis()`` and, while the step needs more than
``HEADROOM`` of the limit, doubles the number of micro-batches (each part half the size: the global
batch, and so the optimisation, is kept by gradient accumulation). The compiled executable it returns is
the one the loop runs: each step is compiled once (a shape change then fails loudly instead of compiling
again).

The limit is the device's own (``memory_stats()["bytes_limit"]`` on GPU/TPU) unless one is given; the CPU
backend reports none, so there the plan only records the estimate.

``scaled_estimate(build, state, batch_of, batch_size)``: the memory a step would need at ``batch_size``,
extrapolated linearly from compiles at batch 1 and 2 (cheap on a CPU; used to size release-scale runs
without the device, e.g. the HR step at batch 64 x 256^2).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable

import jax

logger = logging.getLogger(__name__)

HEADROOM = 0.9  # fraction of the device memory a step may plan to use (the rest: allocator, fragmentation)


def step_bytes(compiled: Any) -> int | None:
    """Device bytes a compiled step needs: arguments + outputs + temporaries - donated (aliased) buffers."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        return None
    if m is None:
        return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
               + m.generated_code_size_in_bytes - m.alias_size_in_bytes)


def device_limit_bytes(device: Any = None) -> int | None:
    """The device's memory in bytes (None when the backend does not say, as on CPU)."""
    device = jax.devices()[0] if device is None else device
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001
        return None
    return int(stats["bytes_limit"]) if stats and "bytes_limit" in stats else None


@dataclasses.dataclass
class StepPlan:
    """compiled: the executable to run. micro_batches: gradient-accumulation parts chosen. bytes: its
    memory need (None: unknown). limit_bytes: the limit it was fitted to (None: none known). fits: whether
    it fits (True when no limit is known). compile_s: seconds of all compiles. attempts: (micro_batches,
    bytes) of each compile."""

    compiled: Any
    micro_batches: int
    bytes: int | None
    limit_bytes: int | None
    fits: bool
    compile_s: float
    attempts: list[tuple[int, int | None]]

    def report(self) -> dict[str, Any]:
        return {"micro_batches": self.micro_batches, "bytes": self.bytes, "limit_bytes": self.limit_bytes,
                "fits": self.fits, "compile_s": round(self.compile_s, 3),
                "attempts": [list(a) for a in self.attempts]}


def fit_step(build: Callable[[int], Any], state: Any, batch: Any, *, per_device_batch: int,
             limit_bytes: int | None = None, micro_batches: int = 1) -> StepPlan:
    """See the module docstring. ``build(k)`` returns the jitted step accumulating over k parts; ``state``
    and ``batch`` may be arrays or ``jax.ShapeDtypeStruct``s; ``per_device_batch`` bounds k (each part
    needs at least one sample per device); ``micro_batches``: the first k tried."""
    limit = device_limit_bytes() if not limit_bytes else int(limit_bytes)
    k = int(micro_batches)
    attempts: list[tuple[int, int | None]] = []
    compile_s = 0.0
    while True:
        t0 = time.perf_counter()
        compiled = build(k).lower(state, batch).compile()
        compile_s += time.perf_counter() - t0
        need = step_bytes(compiled)
        attempts.append((k, need))
        fits = limit is None or need is None or need <= HEADROOM * limit
        if fits or 2 * k > per_device_batch or per_device_batch % (2 * k):
            break
        logger.warning("train step needs %.2f GB at %d micro-batch(es), over %.0f%% of %.2f GB: trying %d",
                       need / 1e9, k, 100 * HEADROOM, limit / 1e9, 2 * k)
        k *= 2
    if not fits:
        logger.warning("train step needs %.2f GB even at %d micro-batches of one sample; the limit is %.2f GB",
                       need / 1e9, k, limit / 1e9)
    return StepPlan(compiled, k, need, limit, fits, compile_s, attempts)


def scaled_estimate(build: Callable[[int], Any], state: Any, batch_of: Callable[[int], Any],
                    batch_size: int) -> dict[str, Any]:
    """Bytes the step would need at ``batch_size``, from compiles at batch 1 and 2 (``batch_of(b)``: the
    abstract batch of b samples): ``m(1) + (batch_size - 1) * (m(2) - m(1))``."""
    m1 = step_bytes(build(1).lower(state, batch_of(1)).compile())
    m2 = step_bytes(build(1).lower(state, batch_of(2)).compile())
    if m1 is None or m2 is None:
        return {"batch_size": batch_size, "bytes": None}
    per_sample = m2 - m1
    return {"batch_size": int(batch_size), "bytes": int(m1 + (batch_size - 1) * per_sample),
            "bytes_at_1": m1, "bytes_per_sample": per_sample}
