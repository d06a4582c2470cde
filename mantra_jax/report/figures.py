"""Pictures of a report: bounded thumbnails, the outcome overlay, and SVG plots (matplotlib, Agg).

SVGs are written with matplotlib's text as paths and a fixed hash salt and no date, so the same data give
the same bytes, and they reference nothing outside themselves.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np

from mantra_jax.eval.saved_maps import FN, FP, TP
from mantra_jax.report.page import as_float

# colours of the fixed-threshold outcome overlay (RGB): true positives, false positives, false negatives
OUTCOME_COLOURS = {TP: (0, 200, 0), FP: (230, 0, 0), FN: (30, 90, 255)}
OUTCOME_ALPHA = 0.65


def outcome_overlay(image: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8: ``image`` (h, w, 3) uint8 in gray, with TP / FP / FN pixels of ``outcome`` (h, w)
    painted in ``OUTCOME_COLOURS`` at ``OUTCOME_ALPHA``; true negatives stay gray."""
    if image.shape[:2] != outcome.shape:
        raise ValueError(f"outcome_overlay: image {image.shape[:2]} and outcome {outcome.shape} differ")
    gray = image.astype(np.float32).mean(axis=2, keepdims=True).repeat(3, axis=2)
    out = gray.copy()
    for cls, colour in OUTCOME_COLOURS.items():
        sel = outcome == cls
        out[sel] = (1 - OUTCOME_ALPHA) * gray[sel] + OUTCOME_ALPHA * np.asarray(colour, np.float32)
    return np.rint(out).astype(np.uint8)


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(width, height))


def _svg(plt: Any, fig: Any) -> bytes:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "mantra-report", "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def curve_svg(x: np.ndarray, y: np.ndarray, *, xlabel: str, ylabel: str, title: str,
              diagonal: bool = False) -> bytes:
    """One curve (x, y: 1-D float arrays of equal length) as SVG bytes, axes [0, 1] x [0, 1]."""
    plt, (fig, ax) = _figure(4.2, 4.0)
    ax.plot(x, y, color="C0", linewidth=1.5)
    if diagonal:
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=0.8)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _svg(plt, fig)


def robustness_svg(rows: Sequence[dict[str, Any]], attack: str, metrics: Sequence[str],
                   clean: dict[str, Any] | None) -> bytes:
    """Each metric of ``rows`` (robustness.json rows of one ``attack``) against its level, the clean run's
    value as a dashed line of the same colour; SVG bytes."""
    plt, (fig, ax) = _figure(5.0, 3.6)
    for k, metric in enumerate(metrics):
        pts = [(as_float(r.get("level")), as_float(r.get(metric))) for r in rows]
        pts = [(x, y) for x, y in pts if x is not None and y is not None]
        if pts:
            xs, ys = zip(*sorted(pts))
            ax.plot(xs, ys, "o-", color=f"C{k}", label=metric, markersize=3)
        if clean is not None and as_float(clean.get(metric)) is not None:
            ax.axhline(as_float(clean[metric]), color=f"C{k}", linestyle="--", linewidth=0.8)
    ax.set_title(f"{attack} (dashed: clean)", fontsize="medium")
    ax.set_xlabel(str(rows[0].get("parameter") or "level") if rows else "level")
    ax.set_ylabel("score")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="lower left")
    fig.tight_layout()
    return _svg(plt, fig)
