"""Tile planning for exact tiled inference (``mantra_jax.infer.tiled``): cores covering an axis once, each
inside a region that reaches a halo beyond it wherever the region stops inside the image.

Along an axis of length A longer than ``R = tile + 2 halo``, ``axis_plan`` gives regions of length R
(``start = clip(core_start - halo, 0, A - R)``) and ``bounded_axis_plan`` regions of one length g from the
ladder ``R, R - step, R - 2 step, ...`` (the g whose plan computes the fewest pixels), shifted inward at the
image border rather than clipped; the core sits at a varying offset inside its region. An axis no longer
than R is one region spanning it (unless ``bounded``: then only an axis below the ladder's last value is).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SHAPE_STEP = 32  # region lengths come from tile + 2 halo - k * SHAPE_STEP (bounded_axis_plan)


class Span(NamedTuple):
    """One tile along an axis: core [core0, core1) inside region [reg0, reg1)."""

    core0: int
    core1: int
    reg0: int
    reg1: int


def axis_plan(length: int, tile: int, halo: int) -> list[Span]:
    """Cores of ``tile`` pixels covering [0, length) once, each with its region (module docstring).

    An axis no longer than ``tile + 2 halo`` is a single core spanning it; otherwise every region has
    length ``tile + 2 halo`` and reaches at least ``halo`` beyond its core wherever it stops inside the axis.
    """
    if length < 1 or tile < 1 or halo < 0:
        raise ValueError(f"axis_plan needs length >= 1, tile >= 1, halo >= 0; got {length}, {tile}, {halo}")
    region = tile + 2 * halo
    if length <= region:
        return [Span(0, length, 0, length)]
    spans = []
    for core0 in range(0, length, tile):
        core1 = min(core0 + tile, length)
        reg0 = min(max(core0 - halo, 0), length - region)
        spans.append(Span(core0, core1, reg0, reg0 + region))
    return spans


def plan(height: int, width: int, tile: int, halo: int, *, bounded: bool = False,
         step: int = SHAPE_STEP) -> list[tuple[Span, Span]]:
    """Row-major (rows, cols) spans of a height x width image.

    An axis no longer than ``tile + 2 halo`` is one region spanning it, unless ``bounded``; otherwise (and
    always when ``bounded``) the axis gets ``bounded_axis_plan``'s cheapest ladder plan.
    """

    def axis(length: int) -> list[Span]:
        if not bounded and length <= tile + 2 * halo:
            return axis_plan(length, tile, halo)
        return bounded_axis_plan(length, tile, halo, step)

    rows, cols = axis(height), axis(width)
    return [(r, c) for r in rows for c in cols]


def fixed_axis_plan(length: int, region: int, halo: int) -> list[Span]:
    """Cores covering [0, length) once with regions all ``region`` long (``2 halo < region <= length``),
    shifted inward at the ends; a border region's core reaches its outer end (no halo needed there)."""
    if not 2 * halo < region <= length:
        raise ValueError(f"fixed_axis_plan needs 2 halo < region <= length; got {halo}, {region}, {length}")
    spans, core0 = [], 0
    while core0 < length:
        reg0 = min(max(core0 - halo, 0), length - region)
        core1 = length if reg0 + region == length else reg0 + region - halo
        spans.append(Span(core0, core1, reg0, reg0 + region))
        core0 = core1
    return spans


def bounded_axis_plan(length: int, tile: int, halo: int, step: int) -> list[Span]:
    """The cheapest plan whose regions have a length from the ladder ``tile + 2 halo - k step`` (k >= 0,
    values above ``2 halo``), or the whole axis when it is shorter than the ladder's last value.

    So an axis of any length gets one of at most ``tile // step + 1`` region lengths, or its own length
    below the ladder's foot: a bounded set of shapes whatever the image sizes, at the cost of some overlap
    (cheapest = fewest pixels computed).
    """
    if step < 1:
        raise ValueError(f"step must be positive, got {step}")
    ladder = range(tile + 2 * halo, 2 * halo, -step)
    fits = [g for g in ladder if g <= length]
    if not fits:
        return [Span(0, length, 0, length)]
    return min((fixed_axis_plan(length, g, halo) for g in fits), key=lambda sp: len(sp) * (sp[0].reg1 - sp[0].reg0))


def core_weights(span: Span) -> np.ndarray:
    """(reg1 - reg0,) float32: 1 on the core's pixels of the region, 0 on its halo."""
    w = np.zeros(span.reg1 - span.reg0, np.float32)
    w[span.core0 - span.reg0:span.core1 - span.reg0] = 1.0
    return w


def crop_core(a: np.ndarray, rows: Span, cols: Span) -> np.ndarray:
    """The core of a region-shaped array ``a`` (region rows, region cols, ...) -> (core rows, core cols, ...)."""
    return a[rows.core0 - rows.reg0:rows.core1 - rows.reg0, cols.core0 - cols.reg0:cols.core1 - cols.reg0]


__all__ = ["SHAPE_STEP", "Span", "axis_plan", "bounded_axis_plan", "core_weights", "crop_core", "fixed_axis_plan",
           "plan"]
