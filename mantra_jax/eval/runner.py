"""Runs a detector over benchmark pairs and scores it: the loop behind ``mantra eval`` and ``mantra robustness``.

For each ``Pair`` (``mantra_jax.eval.pairs``): load it (``Pair.load``: the image by ``read_image``, its
mask binarised at the image's size by ``mantra_jax.io.masks.load_mask``; a mis-sized mask is resized with
nearest neighbour, or the image is skipped with ``on_mismatch="skip"``; the examples of a prepared
benchmark, ``mantra_jax.datasets.benchmarks.StoredPair``, load the same from its files), optionally transform both (a robustness
attack), predict, and score the map at once (``metrics.image_metrics``), so only one map is held at a time.
A file that cannot be read, or a map with non-finite values, is recorded as failed and the run goes on.

Each pair gives one small JSON-able record (``status`` ok, skipped or failed; the ``ImageMetrics`` of an
ok one), handed to ``on_record`` as soon as it is computed; ``run_pairs(..., done=records)`` reuses the
finished records of an interrupted run instead of recomputing them, and ``run_from_records`` rebuilds the
summary from records alone, so a resumed run gives exactly the metrics of an uninterrupted one.

``mantra eval`` keeps the records in a progress log (``start_progress``, ``append_record``,
``read_progress``): a JSON header line with the settings a resumed run must share, then one record per
line, appended as each image finishes.

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
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from mantra_jax.eval.metrics import ImageMetrics, evaluate, image_metrics, markdown_table
from mantra_jax.eval.pairs import Pair
from mantra_jax.io.masks import MaskRule, OnMismatch
from mantra_jax.io.atomic import write_failure, write_text_atomic
from mantra_jax.io.json_safe import json_safe  # noqa: F401 - re-exported for callers

Predict = Callable[[np.ndarray], tuple[np.ndarray, bool]]
# transform(image (H, W, 3) uint8, mask bool (H, W) or None, index) -> (image', mask')
Transform = Callable[[np.ndarray, "np.ndarray | None", int], tuple[np.ndarray, "np.ndarray | None"]]

ROW_COLUMNS = ("name", "forged", "n_pixels", "forged_fraction", "image_score", "auc", "auc_paper", "negated",
               "f1_fixed", "f1_best", "f1_inverted", "iou", "mask_size_matches", "height", "width", "tiled",
               "seconds", "map_file")


@dataclasses.dataclass
class BenchmarkRun:
    """The outcome of ``run_pairs``: ``summary`` (``metrics.evaluate``), per-image ``rows``, ``failed`` and
    ``skipped`` images (``{"image", "reason"}``), the wall time, and the per-pair ``records`` it was
    built from (``None`` for a pair not reached, e.g. after an interrupt)."""

    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    failed: list[dict[str, str]]
    skipped: list[dict[str, str]]
    seconds: float
    records: list[dict[str, Any] | None] = dataclasses.field(default_factory=list)

    @property
    def n_resized_masks(self) -> int:
        """Scored images whose mask had another size and was resized (nearest neighbour)."""
        return sum(1 for r in self.rows if r.get("mask_size_matches") is False)


_METRIC_FLOATS = tuple(f.name for f in dataclasses.fields(ImageMetrics) if f.type in ("float", float))


def pair_key(pair: Pair) -> str:
    """The identity of a pair in a progress log (``pair.key``: absolute paths for files)."""
    return pair.key


def _metrics_of(record: dict[str, Any]) -> ImageMetrics:
    """The ImageMetrics of an "ok" record (JSON null -> NaN for the float fields)."""
    m = dict(record["metrics"])
    for name in _METRIC_FLOATS:
        m[name] = math.nan if m[name] is None else float(m[name])
    return ImageMetrics(**m)


def run_from_records(records: Sequence[dict[str, Any] | None], seconds: float) -> BenchmarkRun:
    """The BenchmarkRun of per-pair records (in pair order; None = not reached): summary, rows, failures."""
    results, rows, failed, skipped = [], [], [], []
    for r in records:
        if r is None:
            continue
        if r["status"] == "ok":
            m = _metrics_of(r)
            results.append(m)
            rows.append({**dataclasses.asdict(m), **{k: r.get(k, "") for k in _ROW_EXTRA}})
        elif r["status"] == "skipped":
            skipped.append({"image": r["image"], "reason": r["reason"]})
        else:
            failed.append({"image": r["image"], "reason": r["reason"]})
    return BenchmarkRun(evaluate(results), rows, failed, skipped, seconds, list(records))


_ROW_EXTRA = ("mask_size_matches", "height", "width", "tiled", "seconds", "map_file")
# on_map(pair, image, prob, mask) -> extra record fields (``mantra eval``: saves the map, {"map_file": name})
OnMap = Callable[[Pair, np.ndarray, np.ndarray, "np.ndarray | None"], dict[str, Any]]


def _score_pair(k: int, pair: Pair, predict: Predict, rule: MaskRule, on_mismatch: OnMismatch,
                max_pixels: int, max_bytes: int, transform: Transform | None,
                on_map: OnMap | None = None) -> dict[str, Any]:
    """The record of one pair: ``{"key", "image", "status": ok|skipped|failed, ...}`` (module docstring)."""
    t_img = time.perf_counter()
    base = {"key": pair.key, "image": str(pair.image)}
    try:
        loaded = pair.load(rule=rule, on_mismatch=on_mismatch, max_pixels=max_pixels, max_bytes=max_bytes)
        if loaded.skip:
            return {**base, "status": "skipped", "reason": loaded.skip}
        image, mask = loaded.image, loaded.mask
        if transform is not None:
            image, mask = transform(image, mask, k)
        prob, tiled = predict(image)
        m = image_metrics(prob, mask, name=str(pair.image), forged=pair.mask is not None)
        extra = {} if on_map is None else on_map(pair, image, prob, mask)
    except ValueError as e:  # ImageReadError, MaskError, a non-finite map and bad inputs are ValueErrors
        return {**base, "status": "failed", "reason": str(e).splitlines()[0] if str(e) else repr(e)}
    return {**base, "status": "ok", "metrics": json_safe(dataclasses.asdict(m)),
            "mask_size_matches": loaded.size_matches, "height": int(prob.shape[0]), "width": int(prob.shape[1]),
            "tiled": bool(tiled), "seconds": round(time.perf_counter() - t_img, 3), **extra}


def is_finished(record: dict[str, Any] | None) -> bool:
    """Whether a record needs no new run: ok or skipped (a failed image is tried again on resume)."""
    return record is not None and record["status"] in ("ok", "skipped")


def run_pairs(pairs: Sequence[Pair], predict: Predict, *, rule: MaskRule = "bright",
              on_mismatch: OnMismatch = "resize", max_pixels: int | None = None,
              max_bytes: int | None = None, transform: Transform | None = None,
              progress: Callable[[int, int, str], None] | None = None,
              done: Mapping[str, dict[str, Any]] | None = None,
              on_record: Callable[[dict[str, Any]], None] | None = None,
              on_map: OnMap | None = None) -> BenchmarkRun:
    """Predicts and scores every pair (module docstring). ``predict(image) -> (map (H, W), tiled)``.

    Resuming: a pair whose ``pair_key`` is in ``done`` with status ok or skipped is not read again; its
    record is reused (failed pairs are retried). ``on_record(record)`` is called with each new record as
    soon as it is computed (``mantra eval`` appends it to its progress log, and rebuilds partial results
    from what it was handed when interrupted). ``on_map(pair, image, prob, mask)`` is called with each
    newly scored map; the fields it returns are added to the record (``mantra eval`` saves the map there,
    ``mantra_jax.eval.saved_maps``).
    """
    from mantra_jax.io.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

    t0 = time.perf_counter()
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    byte_limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    records: list[dict[str, Any] | None] = [None] * len(pairs)
    done = done or {}
    for k, pair in enumerate(pairs):
        previous = done.get(pair_key(pair))
        if is_finished(previous):
            records[k] = previous
        else:
            records[k] = _score_pair(k, pair, predict, rule, on_mismatch, limit, byte_limit, transform, on_map)
            if on_record is not None:
                on_record(records[k])
        if progress is not None:
            progress(k + 1, len(pairs), str(pair.image))
    return run_from_records(records, time.perf_counter() - t0)


# ---- progress log: one JSON header line (format, settings), then one record per line ----------------------

PROGRESS_FORMAT = "mantra-eval-progress/1"


def start_progress(path: pathlib.Path, settings: dict[str, Any]) -> None:
    """Starts a progress log holding only its header: the settings a resumed run must share."""
    write_text_atomic(path, json.dumps({"format": PROGRESS_FORMAT, "settings": json_safe(settings)}) + "\n")


def append_record(log: Any, record: dict[str, Any]) -> None:
    """Appends one record to an open progress log and flushes it (a kill leaves at most a torn last line).
    A failed write (a full disk) raises OSError naming the log and the cause."""
    try:
        log.write(json.dumps(json_safe(record)) + "\n")
        log.flush()
    except OSError as e:
        name = getattr(log, "name", "the progress log")
        raise OSError(e.errno, f"cannot write {name}: {write_failure(e, pathlib.Path(str(name)).parent)}; "
                      f"the images before it are kept and a rerun resumes") from None


def repair_progress(path: pathlib.Path) -> str | None:
    """Cuts a torn tail off a progress log before it is read and appended to; returns a one-line note, or
    None when the log ends cleanly.

    Every write of the log ends with a newline, so bytes after the last newline are what a kill left of an
    interrupted write. A torn last record is cut (that image is redone); a torn header (the only line, cut
    in the first write, which is a prefix of a header) removes the log, so the run starts it again. A
    first line that is not a prefix of a header is left for ``read_progress`` to refuse.
    """
    with open(path, "rb+") as f:
        data = f.read()
        if not data or data.endswith(b"\n"):
            return None
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            marker = json.dumps({"format": PROGRESS_FORMAT}).encode()[:-1]  # b'{"format": "mantra-eval-progress/1"'
            n = min(len(data), len(marker))
            if data[:n] != marker[:n]:
                return None
        f.truncate(cut)
    if cut == 0:
        path.unlink()
        return (f"{path.name}: its header was torn by an interrupted first write ({len(data)} bytes); "
                f"starting the log again")
    return (f"{path.name}: dropped a torn last line ({len(data) - cut} bytes) left by an interrupted write; "
            f"that image is evaluated again")


def read_progress(path: pathlib.Path, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The records of a progress log by pair key (last one wins; a torn line is skipped).

    Raises ValueError when the file is not a progress log or was written with other ``settings``.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != PROGRESS_FORMAT:
        raise ValueError(f"{path.name} is not a mantra eval progress log")
    want, have = json_safe(settings), header.get("settings", {})
    differ = sorted(k for k in set(want) | set(have) if have.get(k) != want.get(k))
    if differ:
        raise ValueError(f"{path.name} holds an evaluation with other settings ({', '.join(differ)} differ)")
    records: dict[str, dict[str, Any]] = {}
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "key" in record:
            records[record["key"]] = record
    return records


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets execute at the start of a cell


def _cell(value: Any) -> Any:
    """One CSV cell: floats with 6 significant digits (NaN empty); text with the bytes of a non-UTF-8 file
    name written as ``\\xNN`` escapes, and a leading formula character neutralised by a ``'`` (OWASP's
    rule against CSV injection: a name like ``=cmd|' -C calc'!A0.png`` is shown, never run)."""
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{float(value):.6g}"
    if isinstance(value, (str, pathlib.PurePath)):
        text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return "'" + text if text.startswith(FORMULA_STARTS) else text
    return value


def rows_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV text of ``rows`` with ``columns`` (see ``_cell``), every field quoted (RFC 4180), so a name holding
    a comma, quote, ``\\r`` or newline stays one cell of one row."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n",
                            quoting=csv.QUOTE_ALL)
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
