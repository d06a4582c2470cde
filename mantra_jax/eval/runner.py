"""Runs a detector over benchmark pairs and scores it: the loop behind ``mantra eval`` and ``mantra robustness``.

For each ``Pair`` (``mantra_jax.eval.pairs``): read the image with ``read_image``, load and binarise its
mask at the image's size (``load_mask``: a mis-sized mask is resized with nearest neighbour, or the image is
skipped with ``on_mismatch="skip"``), optionally transform both (a robustness attack), predict, and add the
map to a ``MetricsAccumulator`` (``mantra_jax.eval.metrics``), so only one map is held at a time. A file
that cannot be read is recorded as failed and the run goes on.

Per-image rows hold the ``ImageMetrics`` fields plus ``mask_size_matches``, ``height``, ``width``,
``tiled`` and ``seconds``; ``write_results`` writes ``metrics.json``, ``per_image.csv`` and ``metrics.md``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import pathlib
import time
from typing import Any, Callable, Sequence

import numpy as np

from mantra_jax.eval.metrics import MetricsAccumulator, markdown_table
from mantra_jax.eval.pairs import MaskRule, OnMismatch, Pair, load_mask
from mantra_jax.io.atomic import write_text_atomic
from mantra_jax.io.json_safe import json_safe  # noqa: F401 - re-exported for callers

Predict = Callable[[np.ndarray], tuple[np.ndarray, bool]]
# transform(image (H, W, 3) uint8, mask bool (H, W) or None, index) -> (image', mask')
Transform = Callable[[np.ndarray, "np.ndarray | None", int], tuple[np.ndarray, "np.ndarray | None"]]

ROW_COLUMNS = ("name", "forged", "n_pixels", "forged_fraction", "image_score", "auc", "auc_paper", "negated",
               "f1_fixed", "f1_best", "f1_inverted", "iou", "mask_size_matches", "height", "width", "tiled",
               "seconds")


@dataclasses.dataclass
class BenchmarkRun:
    """The outcome of ``run_pairs``: ``summary`` (``metrics.evaluate``), per-image ``rows``, ``failed`` and
    ``skipped`` images (``{"image", "reason"}``), and the wall time."""

    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    failed: list[dict[str, str]]
    skipped: list[dict[str, str]]
    seconds: float


def run_pairs(pairs: Sequence[Pair], predict: Predict, *, rule: MaskRule = "bright",
              on_mismatch: OnMismatch = "resize", max_pixels: int | None = None,
              transform: Transform | None = None,
              progress: Callable[[int, int, str], None] | None = None) -> BenchmarkRun:
    """Predicts and scores every pair (module docstring). ``predict(image) -> (map (H, W), tiled)``."""
    from mantra_jax.io.images import DEFAULT_MAX_PIXELS, read_image

    t0 = time.perf_counter()
    acc = MetricsAccumulator()
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    for k, pair in enumerate(pairs):
        t_img = time.perf_counter()
        try:
            image = read_image(pair.image, max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
            mask, matches = None, True
            if pair.mask is not None:
                loaded = load_mask(pair.mask, image.shape[:2], rule=rule, on_mismatch=on_mismatch)
                if loaded.mask is None:
                    skipped.append({"image": str(pair.image),
                                    "reason": f"mask {pair.mask} is {loaded.source_shape[0]}x"
                                              f"{loaded.source_shape[1]}, image is {image.shape[0]}x"
                                              f"{image.shape[1]} (H x W)"})
                    continue
                mask, matches = loaded.mask, loaded.size_matches
            if transform is not None:
                image, mask = transform(image, mask, k)
            prob, tiled = predict(image)
            m = acc.add(prob, mask, name=str(pair.image), forged=pair.mask is not None)
        except ValueError as e:  # ImageReadError, PairsError and bad inputs are ValueErrors
            failed.append({"image": str(pair.image), "reason": str(e).splitlines()[0] if str(e) else repr(e)})
            continue
        finally:
            if progress is not None:
                progress(k + 1, len(pairs), str(pair.image))
        rows.append({**dataclasses.asdict(m), "mask_size_matches": matches, "height": int(prob.shape[0]),
                     "width": int(prob.shape[1]), "tiled": tiled,
                     "seconds": round(time.perf_counter() - t_img, 3)})
    return BenchmarkRun(acc.summary(), rows, failed, skipped, time.perf_counter() - t0)


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def rows_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV text of ``rows`` with ``columns`` (NaN as an empty cell, floats with 6 significant digits)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c, "")) for c in columns})
    return buf.getvalue()


def write_results(out_dir: pathlib.Path, run: BenchmarkRun, meta: dict[str, Any], name: str = "benchmark") -> None:
    """Writes ``metrics.json`` (metrics, conventions, run info), ``per_image.csv`` and ``metrics.md``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = {k: v for k, v in run.summary.items() if k != "conventions"}
    doc = {"metrics": metrics, "conventions": run.summary.get("conventions", {}),
           "run": {**meta, "seconds": round(run.seconds, 2), "n_failed": len(run.failed),
                   "n_skipped": len(run.skipped), "failed": run.failed, "skipped": run.skipped}}
    write_text_atomic(out_dir / "metrics.json", json.dumps(json_safe(doc), indent=2) + "\n")
    write_text_atomic(out_dir / "per_image.csv", rows_csv(run.rows, ROW_COLUMNS))
    write_text_atomic(out_dir / "metrics.md", markdown_table({name: metrics}))
