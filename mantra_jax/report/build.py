"""Builds ``OUT_DIR/report.html`` and its thumbnails under ``OUT_DIR/report/`` from the files a run wrote.

Nothing is predicted again: the page is made of what ``mantra detect`` (``summary.json``, the heat maps and
overlays, the input images), ``mantra eval`` (``metrics.json``, ``per_image.csv``, the saved maps under
``maps/``; an interrupted run's ``progress.jsonl`` when it left no ``metrics.json``) and ``mantra
robustness`` (``robustness.json``) left in the folder. A folder holding several kinds gets one section per
kind. Interrupted runs are said to be partial at the top of the page.

Output rules (``mantra_jax.io.outputs``): before anything is written, ``report.html`` and every file
already under ``report/`` must be free (absent, or written by an earlier ``mantra`` run); each file is
listed in the manifest before it is written, and written atomically. Thumbnails fit ``THUMB_SIDE``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import pathlib
from typing import Any, Callable, Sequence

import numpy as np

from mantra_jax.eval.metrics import SUMMARY_KEYS
from mantra_jax.io.atomic import write_bytes_atomic, write_text_atomic
from mantra_jax.io.images import write_png_atomic
from mantra_jax.io.thumbnails import THUMB_SIDE, thumbnail
from mantra_jax.report import figures
from mantra_jax.report.page import (Column, as_float, bullet_list, definition_list, document, esc, img, number,
                                    table)

REPORT_PAGE = "report.html"
REPORT_DIR = "report"
KIND_FILES = {"detect": "summary.json", "eval": "metrics.json", "robustness": "robustness.json"}
EVAL_PROGRESS = "progress.jsonl"
EVAL_METRICS = ("f1_fixed", "auc", "auc_paper", "f1_best", "f1_inverted", "iou", "image_score",
                "forged_fraction")
DETECT_SCORES = ("score_mean", "score_max", "score_p99")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class ReportError(ValueError):
    """A folder a report cannot be made of (no run outputs, unreadable summary)."""


def run_kinds(folder: pathlib.Path) -> list[str]:
    """The kinds of run outputs in ``folder``: "detect", "eval" (also from a progress log alone), "robustness"."""
    kinds = [k for k, f in KIND_FILES.items() if (folder / f).is_file()]
    if "eval" not in kinds and (folder / EVAL_PROGRESS).is_file():
        kinds.insert(len(kinds) - ("robustness" in kinds), "eval")
    return kinds


def files_in_use(folder: pathlib.Path) -> list[str]:
    """The names a report may replace: ``report.html`` and every file under ``report/`` (and ``report``
    itself when it is no folder); each must be absent or written by mantra (``OutputDir.check_free``)."""
    names = [REPORT_PAGE]
    top = folder / REPORT_DIR
    if os.path.lexists(top) and not top.is_dir():
        return names + [REPORT_DIR]
    for root, dirs, files in os.walk(top):
        rel = pathlib.Path(root).relative_to(folder)
        names.extend((rel / f).as_posix() for f in sorted(files))
    return names


class _Files:
    """Writes the report's files: each claimed in the manifest first, then written atomically."""

    def __init__(self, folder: pathlib.Path, claim: Callable[..., list[pathlib.Path]]):
        self.folder, self.claim = folder, claim

    def png(self, name: str, array: np.ndarray) -> tuple[str, tuple[int, int]]:
        small = thumbnail(array, THUMB_SIDE)
        write_png_atomic(self.claim(f"{REPORT_DIR}/{name}")[0], small)
        return f"{REPORT_DIR}/{name}", small.shape[:2]

    def svg(self, name: str, data: bytes) -> str:
        write_bytes_atomic(self.claim(f"{REPORT_DIR}/{name}")[0], data)
        return f"{REPORT_DIR}/{name}"

    def table(self, table_id: str, columns: Sequence[Column], rows: Sequence[dict[str, Any]], **kw: Any) -> str:
        """A sortable table's HTML (``page.table``); its rows script written as ``report/<table_id>.js``."""
        rel = f"{REPORT_DIR}/{table_id}.js"
        html, script = table(table_id, columns, rows, rows_src=rel, **kw)
        write_text_atomic(self.claim(rel)[0], script)
        return html


def _read_json(path: pathlib.Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ReportError(f"{path}: cannot be read as JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ReportError(f"{path}: not a mantra output (a JSON object was expected)")
    return doc


def _picture(path: pathlib.Path, roi: str = "") -> np.ndarray | None:
    """An image file as (H, W, 3) uint8 (cropped to ``roi`` "x,y,w,h" when given), or None if unreadable."""
    from mantra_jax.io.images import read_image

    try:
        image = read_image(path)
        if roi:
            x, y, w, h = (int(v) for v in roi.split(","))
            image = image[y:y + h, x:x + w]
        return image if image.size else None
    except (OSError, ValueError):
        return None


def _inside(folder: pathlib.Path, name: Any, pattern: str = r"[^/\\]+") -> pathlib.Path | None:
    """``folder / name`` for a file name a run recorded, or None when it is not one (empty, absolute, with
    ``..`` or other folders than ``pattern`` allows): a report never reads outside the run's folder."""
    text = str(name or "")
    if not re.fullmatch(pattern, text) or ".." in text.split("/"):
        return None
    return folder / text


def _thumb_cell(files: _Files, name: str, array: np.ndarray | None, alt: str) -> str:
    if array is None:
        return img(None, alt)
    rel, size = files.png(name, array)
    return img(rel, alt, size)


def _sort_rows(rows: list[dict[str, Any]], key: str, ascending: bool) -> list[dict[str, Any]]:
    """Rows by ``key`` (numbers; not available last, whatever the direction), stable."""
    have = [r for r in rows if as_float(r.get(key)) is not None]
    missing = [r for r in rows if as_float(r.get(key)) is None]
    have.sort(key=lambda r: as_float(r.get(key)), reverse=not ascending)
    return have + missing


def _csv_name(text: str) -> str:
    """A name as written to a CSV cell, with the ``'`` guarding a formula character taken off."""
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA) else text


# ---- detect ------------------------------------------------------------------------------------------------

def _detect_section(folder: pathlib.Path, files: _Files) -> tuple[str, str | None]:
    summary = _read_json(folder / KIND_FILES["detect"])
    records = [r for r in summary.get("images", []) if isinstance(r, dict)]
    rows = []
    for i, r in enumerate(r for r in records if r.get("status") == "ok"):
        base = f"d{i:05d}"
        heat_path, over_path = _inside(folder, r.get("heatmap_file")), _inside(folder, r.get("overlay_file"))
        heat = None if heat_path is None else _picture(heat_path)
        over = None if over_path is None else _picture(over_path)
        rows.append({"name": str(r.get("image", "")),
                     "image": _thumb_cell(files, f"{base}_image.png",
                                          _picture(pathlib.Path(str(r.get("image", ""))), str(r.get("roi") or "")),
                                          "image"),
                     "heat": _thumb_cell(files, f"{base}_heatmap.png", heat, "heat map"),
                     "overlay": _thumb_cell(files, f"{base}_overlay.png", over, "overlay"),
                     **{k: r.get(k) for k in DETECT_SCORES},
                     "size": f"{r.get('height')}x{r.get('width')}" + (f" (ROI {r['roi']})" if r.get("roi") else ""),
                     "tiled": "yes" if r.get("tiled") else "no", "seconds": r.get("seconds")})
    rows = _sort_rows(rows, "score_mean", ascending=False)
    columns = [Column("name", "image file", "text"), Column("image", "image", "html"),
               Column("heat", "heat map", "html"), Column("overlay", "overlay", "html"),
               Column("score_mean", "score_mean", title="mean forgery probability (the paper's image score)"),
               Column("score_max", "score_max", title="largest pixel probability"),
               Column("score_p99", "score_p99", title="99th percentile of the pixel probabilities"),
               Column("size", "size (HxW)", "text"), Column("tiled", "tiled", "text"),
               Column("seconds", "seconds")]
    failed = [str(r.get("error") or r.get("image")) for r in records if r.get("status") == "error"]
    failed += [str(p) for p in summary.get("input_problems", [])]
    weights = summary.get("weights") or {}
    settings = [("checkpoint", summary.get("checkpoint")), ("weights", _weights_text(weights)),
                ("variant", (summary.get("config") or {}).get("variant")),
                ("images", summary.get("n_images")), ("processed", summary.get("n_ok")),
                ("failed", summary.get("n_failed")), ("complete", summary.get("complete"))]
    partial = None
    if summary.get("complete") is False:
        left = summary.get("not_processed", [])
        partial = (f"mantra detect was interrupted: {len(rows)} of {summary.get('n_images')} image(s) processed, "
                   f"{len(left)} not processed")
    html = (f'<section id="detect"><h2>Detection: {len(rows)} image(s)</h2>'
            f"<p>Heat maps: forgery probability through the JET colour map (blue 0, red 1); overlays blend "
            f"the photo with it. Sorted by score_mean, most suspicious first; click a column to sort.</p>"
            f"{files.table('detect-table', columns, rows, sorted_by='score_mean', ascending=False)}"
            f"<h3>Failed inputs ({len(failed)})</h3>{bullet_list(failed, 'none')}"
            + (f"<h3>Not processed ({len(summary.get('not_processed', []))})</h3>"
               f"{bullet_list([str(p) for p in summary.get('not_processed', [])], 'none')}" if partial else "")
            + f"<h3>Run settings</h3>{definition_list(settings)}</section>")
    return html, partial


def _weights_text(weights: Any) -> str | None:
    if not isinstance(weights, dict) or not weights:
        return None
    return f"{weights.get('name')} (git blob {weights.get('blob_id')})"


# ---- eval --------------------------------------------------------------------------------------------------

def _eval_from_progress(path: pathlib.Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(metrics.json-like document, per-image rows) rebuilt from an interrupted run's progress log."""
    from mantra_jax.eval.runner import run_from_records

    records: dict[str, dict[str, Any]] = {}
    settings: dict[str, Any] = {}
    for k, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line
        if k == 0 and isinstance(entry, dict) and "settings" in entry:
            settings = entry["settings"] if isinstance(entry["settings"], dict) else {}
        elif isinstance(entry, dict) and "key" in entry and "status" in entry:
            records[entry["key"]] = entry
    run = run_from_records(list(records.values()), 0.0)
    doc = {"metrics": {k: v for k, v in run.summary.items() if k != "conventions"},
           "conventions": run.summary.get("conventions", {}),
           "run": {"mask_rule": settings.get("mask_rule"), "weights_sha256": settings.get("weights_sha256"),
                   "config": settings.get("config"), "complete": False, "n_done": len(records),
                   "failed": run.failed, "skipped": run.skipped, "from_progress_log": True}}
    return doc, run.rows


def _read_eval(folder: pathlib.Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not (folder / KIND_FILES["eval"]).is_file():
        return _eval_from_progress(folder / EVAL_PROGRESS)
    doc = _read_json(folder / KIND_FILES["eval"])
    rows: list[dict[str, Any]] = []
    try:
        with open(folder / "per_image.csv", encoding="utf-8", newline="") as f:
            rows = [dict(r) for r in csv.DictReader(f)]
    except OSError:
        pass
    return doc, rows


def _eval_section(folder: pathlib.Path, files: _Files) -> tuple[str, str | None]:
    from mantra_jax.eval.saved_maps import load_map, pooled_curves
    from mantra_jax.infer.detect import heatmap

    doc, per_image = _read_eval(folder)
    metrics, conventions, run = doc.get("metrics", {}), doc.get("conventions", {}), doc.get("run", {})
    headline = "".join(
        f'<tr><th>{esc(k)}</th><td class="num metric" data-key="{esc(k)}" '
        f'data-v="{"" if as_float(metrics.get(k)) is None else repr(as_float(metrics.get(k)))}">'
        f'{esc(metrics.get(k) if k == "n_images" else number(metrics.get(k)))}</td>'
        f'<td>{esc(conventions.get(k, ""))}</td></tr>' for k in SUMMARY_KEYS)
    rows, hists, missing_maps = [], [], 0
    for i, r in enumerate(per_image):
        name = _csv_name(str(r.get("name", "")))
        cells = {"image": img(None, "image"), "mask": img(None, "mask"), "heat": img(None, "heat map"),
                 "outcome": img(None, "outcome")}
        arrays, path = None, _inside(folder, r.get("map_file"), r"maps/[0-9a-f]+\.npz")
        if path is not None:
            try:
                arrays = load_map(path)
            except ValueError:
                pass
        missing_maps += arrays is None
        if arrays is not None:
            hists.append(arrays["hist"])
            base = f"e{i:05d}"
            cells = {"image": _thumb_cell(files, f"{base}_image.png", arrays["image"], "image"),
                     "mask": _thumb_cell(files, f"{base}_mask.png", arrays["mask"], "ground-truth mask"),
                     "heat": _thumb_cell(files, f"{base}_heatmap.png", heatmap(arrays["prob"] / 255.0), "heat map"),
                     "outcome": _thumb_cell(files, f"{base}_outcome.png",
                                            figures.outcome_overlay(arrays["image"], arrays["outcome"]), "outcome")}
        rows.append({"name": name, **cells, **{k: r.get(k) for k in EVAL_METRICS},
                     "negated": str(r.get("negated", "")), "forged": str(r.get("forged", ""))})
    rows = _sort_rows(rows, "f1_fixed", ascending=True)
    columns = [Column("name", "image file", "text"), Column("image", "image", "html"),
               Column("mask", "ground truth", "html"), Column("heat", "heat map", "html"),
               Column("outcome", "TP / FP / FN at 0.5", "html"),
               *(Column(k, k, title=str(conventions.get(_SUMMARY_OF.get(k, k), ""))) for k in EVAL_METRICS),
               Column("negated", "negated (paper)", "text"), Column("forged", "forged", "text")]
    curves_html = _curves(files, hists, pooled_curves)
    failed = [f"{f.get('image')}: {f.get('reason')}" for f in run.get("failed", []) if isinstance(f, dict)]
    skipped = [f"{f.get('image')}: {f.get('reason')}" for f in run.get("skipped", []) if isinstance(f, dict)]
    partial = None
    if run.get("complete") is False:
        source = " (rebuilt from progress.jsonl: metrics.json was not written)" if run.get("from_progress_log") else ""
        partial = (f"mantra eval was interrupted: {run.get('n_done')} of {run.get('n_pairs', '?')} image(s) "
                   f"evaluated{source}; run the same command again to resume")
    note = (f"<p class=\"none\">{missing_maps} image(s) without a saved map (a run of an older mantra, or maps "
            "removed): their pictures are not shown and they are not in the pooled curves.</p>"
            if missing_maps else "")
    legend = ('<p class="legend">Outcome at the fixed threshold p &ge; 0.5: '
              + "".join(f'<span style="background:rgb{c}">{esc(n)}</span>'
                        for n, c in zip(("true positive", "false positive", "false negative"),
                                        (figures.OUTCOME_COLOURS[k] for k in sorted(figures.OUTCOME_COLOURS))))
              + "true negatives gray.</p>")
    html = (f'<section id="eval"><h2>Evaluation: {esc(metrics.get("n_images"))} image(s)</h2>'
            f'<h3>Headline metrics</h3><table class="headline"><tr><th>metric</th><th>value</th>'
            f"<th>definition</th></tr>{headline}</table>{curves_html}"
            f"<h3>Per image (worst f1_fixed first)</h3>{legend}{note}"
            f"{files.table('eval-table', columns, rows, sorted_by='f1_fixed', ascending=True)}"
            f"<h3>Failed ({len(failed)})</h3>{bullet_list(failed, 'none')}"
            f"<h3>Skipped ({len(skipped)})</h3>{bullet_list(skipped, 'none')}"
            f"<h3>Run settings</h3>{definition_list(_eval_settings(run))}</section>")
    return html, partial


_SUMMARY_OF = {"f1_fixed": "pixel_f1_fixed", "auc": "pixel_auc", "auc_paper": "pixel_auc_paper",
               "f1_best": "pixel_f1_best", "f1_inverted": "pixel_f1_inverted", "iou": "pixel_iou"}


def _eval_settings(run: dict[str, Any]) -> list[tuple[str, Any]]:
    tiling = ("whole images" if run.get("tile") is None and run.get("bounded_shapes") is False else
              f"tile {run.get('tile')}, auto above {run.get('auto_tile_pixels')} px, bounded shapes "
              f"{run.get('bounded_shapes')}")
    return [("checkpoint", run.get("checkpoint")), ("weights", _weights_text(run.get("weights"))),
            ("weights sha256", run.get("weights_sha256")), ("variant", (run.get("config") or {}).get("variant")),
            ("pairs", run.get("pairs")), ("mask rule", run.get("mask_rule")),
            ("mismatched masks", run.get("mismatched_masks")), ("tiling (exact)", tiling),
            ("images listed", run.get("n_pairs")), ("images done", run.get("n_done")),
            ("complete", run.get("complete")), ("seconds", run.get("seconds")),
            ("compilations", run.get("compilations"))]


def _curves(files: _Files, hists: list[np.ndarray], pooled: Callable[..., dict[str, Any]]) -> str:
    c = pooled(hists)
    if c["auc"] is None:
        return ("<h3>Pooled ROC and precision-recall curves</h3><p>Not available: no saved map of an image "
                "with both forged and authentic pixels.</p>")
    roc = files.svg("roc.svg", figures.curve_svg(c["fpr"], c["tpr"], xlabel="false positive rate",
                                                 ylabel="true positive rate", diagonal=True,
                                                 title=f"pooled ROC, AUC {c['auc']:.4f}"))
    pr = files.svg("pr.svg", figures.curve_svg(c["recall"], c["precision"], xlabel="recall", ylabel="precision",
                                               title="pooled precision-recall"))
    return (f"<h3>Pooled ROC and precision-recall curves</h3><p>All pixels of the {c['n_images']} image(s) "
            f"with forged pixels pooled ({c['n_pos']} forged, {c['n_neg']} authentic), thresholds every 0.001; "
            f'pooled ROC AUC <span id="pooled-auc">{c["auc"]:.4f}</span> (not the mean of per-image AUCs above).</p>'
            f'<div class="figures">{img(roc, "pooled ROC curve")}{img(pr, "pooled precision-recall curve")}</div>')


# ---- robustness --------------------------------------------------------------------------------------------

def _robustness_section(folder: pathlib.Path, files: _Files) -> tuple[str, str | None]:
    from mantra_jax.eval.robustness import METRICS

    doc = _read_json(folder / KIND_FILES["robustness"])
    rows = [r for r in doc.get("rows", []) if isinstance(r, dict)]
    clean = next((r for r in rows if r.get("attack") == "none"), None)
    attacks = [a for a in dict.fromkeys(str(r.get("attack")) for r in rows) if a != "none"]
    plots = []
    for k, attack in enumerate(attacks):
        sub = [r for r in rows if str(r.get("attack")) == attack]
        rel = files.svg(f"robustness_{k}.svg", figures.robustness_svg(sub, attack, METRICS, clean))
        plots.append(f"<figure>{img(rel, f'{attack}: metrics against strength')}"
                     f"<figcaption>{esc(attack)}</figcaption></figure>")
    shown = [{**r, "attack": str(r.get("attack")), "parameter": str(r.get("parameter") or ""),
              "level_shown": "clean" if as_float(r.get("level")) is None else f"{as_float(r['level']):g}"}
             for r in rows]
    columns = [Column("attack", "attack", "text"), Column("parameter", "parameter", "text"),
               Column("level", "level"), Column("n_images", "images"), Column("n_failed", "failed"),
               *(Column(m, m) for m in METRICS), Column("seconds", "seconds")]
    for r in shown:
        r["n_images_shown"], r["n_failed_shown"] = str(r.get("n_images")), str(r.get("n_failed"))
    settings = [("checkpoint", doc.get("checkpoint")), ("weights", _weights_text(doc.get("weights"))),
                ("pairs", doc.get("pairs")), ("seed", doc.get("seed")),
                ("attacks", "; ".join(f"{a}: {', '.join(f'{v:g}' for v in lv)}"
                                      for a, lv in (doc.get("attacks") or {}).items()))]
    html = (f'<section id="robustness"><h2>Robustness: {len(attacks)} perturbation(s)</h2>'
            f'<p>Each metric against the perturbation\'s strength; dashed lines: the clean run.</p>'
            f'<div class="figures">{"".join(plots)}</div>'
            f"{files.table('robustness-table', columns, shown, name_key='attack')}"
            f"<h3>Run settings</h3>{definition_list(settings)}</section>")
    return html, None


SECTIONS = {"detect": _detect_section, "eval": _eval_section, "robustness": _robustness_section}


def write_report(folder: pathlib.Path, claim: Callable[..., list[pathlib.Path]]) -> pathlib.Path:
    """Writes ``folder/report.html`` and its files under ``folder/report/``; returns the page's path.

    ``claim(*names)`` lists names in the folder's manifest before they are written (``OutputDir.claim``);
    the caller has checked ``files_in_use(folder)`` are free. ReportError when the folder holds no run.
    """
    folder = pathlib.Path(folder)
    kinds = run_kinds(folder)
    if not kinds:
        raise ReportError(f"{folder} holds no mantra run outputs ({', '.join(KIND_FILES.values())} or "
                          f"{EVAL_PROGRESS})")
    files = _Files(folder, claim)
    sections, partial = [], []
    for kind in kinds:
        html, note = SECTIONS[kind](folder, files)
        sections.append(html)
        if note:
            partial.append(note)
    page = document(f"mantra report: {folder.resolve().name}", sections, "; ".join(partial) or None)
    path = claim(REPORT_PAGE)[0]
    write_text_atomic(path, page)
    return path


__all__ = ["REPORT_PAGE", "REPORT_DIR", "ReportError", "files_in_use", "run_kinds", "write_report"]
