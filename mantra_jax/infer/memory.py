"""Bounded memory: whole-image or exact tiled inference, with the tile chosen to keep peak RSS under a budget.

The process's peak resident memory is modelled as

    fixed + host * H * W + network

where ``fixed`` is the process itself (Python, JAX, the weights, XLA compiling), ``host`` the bytes per
image pixel held around the network (the decoded image, the output map, ``mantra detect``'s scores and
output files) and ``network`` either ``whole * H * W`` (whole-image inference) or, for exact tiled
inference (``mantra_jax.infer.tiled``), ``max(pass1 * R1, pass2 * R2)`` with R1, R2 the largest region of
either pass in pixels, plus the stored adapted features (H * W * C float32) when they are kept in memory
rather than in an unlinked temporary file. The per-pixel figures are measured, per model variant and
compute policy, in ``COSTS`` (the one home of these numbers; how they were measured is said there).

``plan_memory`` picks whole-image inference when it fits the budget (and shapes are not bounded), else the
largest core tile of ``TILE_LADDER`` whose estimate fits; ``predict_within`` runs the plan.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import numpy as np

MIB, GIB = 1 << 20, 1 << 30
DEFAULT_BUDGET_BYTES = 2 * GIB  # mantra detect / eval / robustness --memory default
TILE_LADDER = (1024, 768, 640, 512, 448, 384, 320, 256, 192, 128, 96, 64)  # core tiles tried, largest first


@dataclasses.dataclass(frozen=True)
class Cost:
    """Peak-RSS model of one variant and compute policy (module docstring): ``fixed`` bytes, and bytes per
    pixel of the image (``whole``, ``host``) or of the largest region of a tiled pass (``pass1``, ``pass2``)."""

    fixed: float
    whole: float
    pass1: float
    pass2: float
    host: float


# Measured with ``python experiments/bench_memory.py --calibrate`` (each point a fresh process, compile cache
# off, so compiling is included; peak RSS = resource.getrusage(RUSAGE_SELF).ru_maxrss), on an Intel Xeon
# (2 cores), jax 0.10.2, XLA CPU, with the random Ptrain4-shaped reference weights (../shared/reference):
# least-squares lines through pass1 at 160^2, 288^2, 416^2 regions, pass2 at 176^2, 304^2, 432^2, whole-image
# inference at 192^2, 320^2, 448^2 and detect's host work at 2000 x 1500 and 4000 x 3000. ``fixed`` is the
# largest intercept of the three network lines. Rounded up; the planner keeps ``MARGIN`` of the budget free.
COSTS: dict[tuple[str, str], Cost] = {
    # fits (bytes per pixel, intercept): pass1 7814, 735 MiB; pass2 2738, 447 MiB; whole 7447, 773 MiB; host
    # (peak over the 322 MiB of the process after imports and weights): 26 at 4000 x 3000, 47 at 2000 x 1500
    # (a 60 MiB intercept, inside ``fixed``). During the network the host holds ~7 B/px (image, map).
    ("ptrain4", "auto"): Cost(fixed=800 * MIB, whole=7600.0, pass1=8000.0, pass2=2800.0, host=28.0),
}
FALLBACK = ("ptrain4", "auto")  # variants / policies not measured (e.g. ``tiny``, narrower) use these figures
MARGIN = 0.9  # estimates must fit within this share of the budget


class MemoryBudgetError(ValueError):
    """An image that cannot be analysed within the memory budget, even at the smallest tile."""


def cost_for(variant: str | None, conv_algorithm: str = "auto") -> Cost:
    """The measured ``Cost`` of a variant and compute policy, or ``FALLBACK``'s for one not measured."""
    return COSTS.get((str(variant), str(conv_algorithm)), COSTS[FALLBACK])


_UNITS = {"": 1, "k": 1 << 10, "m": MIB, "g": GIB, "t": 1 << 40}


def parse_bytes(text: str) -> int:
    """``"2G"``, ``"512M"``, ``"1.5GiB"``, ``"4gb"``, ``"3000000"`` -> bytes (K/M/G/T are powers of 1024,
    with or without ``B`` / ``iB``); ValueError for anything else or a size that is not positive."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([kmgt]?)(?:i?b)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"expected a size such as 2G, 512M or 1.5GiB, got {text!r}")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"expected a positive size, got {text!r}")
    return int(value)


def format_bytes(n: float) -> str:
    """Bytes as ``"1.50 GiB"`` or ``"512 MiB"``."""
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """How to analyse one image: ``tile`` None for whole-image inference, else the core tile; ``store`` where
    tiled inference keeps its features ("memory" or "file"); ``estimate`` the modelled peak RSS in bytes."""

    tile: int | None
    store: str
    estimate: int


def estimate_whole_bytes(cost: Cost, height: int, width: int) -> int:
    """Modelled peak RSS of whole-image inference of a height x width image."""
    return int(cost.fixed + (cost.host + cost.whole) * height * width)


def estimate_tiled_bytes(cost: Cost, height: int, width: int, tile: int, featex_halo: int, ladn_halo: int,
                         channels: int, *, bounded: bool, store: str) -> int:
    """Modelled peak RSS of ``predict_tiled`` (``mantra_jax.infer.tiled``) at core ``tile``; ``store``: "memory"
    counts the H x W x ``channels`` float32 features, "file" does not.

    Unbounded, the regions are those of the image's plan, and an image that is one region in both passes is
    run whole by ``predict_tiled`` and costs that. ``bounded`` counts the ladder's largest regions,
    (tile + 2 halo)^2, whatever the image, so that images of any size in a run get the same tile (and so the
    same few compiled shapes) unless their own host memory forces a smaller one."""
    from mantra_jax.infer.plan import plan

    def largest(halo: int) -> int:
        if bounded:
            return (tile + 2 * halo) ** 2
        return max((r.reg1 - r.reg0) * (c.reg1 - c.reg0) for r, c in plan(height, width, tile, halo))

    if not bounded and len(plan(height, width, tile, featex_halo)) == len(plan(height, width, tile, ladn_halo)) == 1:
        return estimate_whole_bytes(cost, height, width)
    network = max(cost.pass1 * largest(featex_halo), cost.pass2 * largest(ladn_halo))
    features = 4 * channels * height * width if store == "memory" else 0
    return int(cost.fixed + cost.host * height * width + network + features)


def plan_memory(height: int, width: int, budget: int, cost: Cost, featex_halo: int, ladn_halo: int,
                channels: int, *, bounded: bool = False, tiles: tuple[int, ...] = TILE_LADDER) -> MemoryPlan:
    """The plan for a height x width image under ``budget`` bytes (module docstring).

    Whole-image inference when its estimate fits (never with ``bounded``, whose point is a bounded set of
    compiled shapes); else the largest tile of ``tiles`` that fits, features in memory when that fits too
    (and they are at most ``feature_store.MEMORY_LIMIT_BYTES``), else in a file. Raises MemoryBudgetError
    when even the smallest tile does not fit.
    """
    from mantra_jax.infer.feature_store import MEMORY_LIMIT_BYTES

    if min(height, width) < 1 or budget < 1 or channels < 1:
        raise ValueError(f"plan_memory needs positive sizes, got {height}x{width}, budget {budget}, "
                         f"{channels} channels")
    allowed = MARGIN * budget
    if not bounded:
        whole = estimate_whole_bytes(cost, height, width)
        if whole <= allowed:
            return MemoryPlan(None, "memory", whole)
    in_memory = 4 * channels * height * width <= MEMORY_LIMIT_BYTES
    smallest = None
    for tile in tiles:
        for store in (("memory", "file") if in_memory else ("file",)):
            est = estimate_tiled_bytes(cost, height, width, tile, featex_halo, ladn_halo, channels,
                                       bounded=bounded, store=store)
            if est <= allowed:
                return MemoryPlan(int(tile), store, est)
            smallest = est
    raise MemoryBudgetError(f"a {width}x{height} image needs a budget of about {format_bytes(smallest / MARGIN)} "
                            "even at "
                            f"tile {tiles[-1]}, more than the memory budget of {format_bytes(budget)} (--memory)")


def model_plan(model: Any, variables: Any, variant: str | None, image_shape: tuple[int, ...], budget: int, *,
               bounded: bool = False) -> MemoryPlan:
    """``plan_memory`` for a ManTraNet: its halos, channels and measured cost (``cost_for``)."""
    from mantra_jax.infer.halo import receptive_halo
    from mantra_jax.models.mantranet import adapted_channels

    halo = receptive_halo(model)
    channels = adapted_channels(variables)
    cost = cost_for(variant, model.compute.conv_algorithm)
    return plan_memory(int(image_shape[0]), int(image_shape[1]), int(budget), cost, halo.featex, halo.ladn,
                       channels, bounded=bounded)


def predict_within(model: Any, variables: Any, image: np.ndarray, budget: int, *, variant: str | None = None,
                   bounded: bool = False) -> tuple[np.ndarray, bool]:
    """The forgery map of (H, W, 3) uint8 ``image`` within ``budget`` bytes of peak RSS (``model_plan``):
    returns ``(map (H, W) float32, tiled)``. Raises MemoryBudgetError when the image cannot fit."""
    from mantra_jax.infer import tiled  # through tiled.predict_auto: the one place every map is computed
    from mantra_jax.infer.whole import check_image

    img = check_image(image)
    mp = model_plan(model, variables, variant, img.shape, budget, bounded=bounded)
    if mp.tile is None:  # whole: the image is within predict_auto's pixel limit
        return tiled.predict_auto(model, variables, img, auto_tile_pixels=img.shape[0] * img.shape[1])
    return tiled.predict_auto(model, variables, img, tile=mp.tile, store=mp.store, bounded=bounded)


__all__ = ["COSTS", "DEFAULT_BUDGET_BYTES", "TILE_LADDER", "Cost", "MemoryBudgetError", "MemoryPlan", "cost_for",
           "estimate_tiled_bytes", "estimate_whole_bytes", "format_bytes", "model_plan", "parse_bytes",
           "plan_memory", "predict_within"]
