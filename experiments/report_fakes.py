"""Run folders of detect / eval / robustness made without a model, for the report's tests, benchmark and
README screenshots.

The writers are the commands' own (``infer.detect.detect_file``, ``cli.detect``'s summary, ``eval.runner``
with the saved maps of ``mantra eval``, ``eval.robustness``); only the network is replaced by
``fake_predict``, a deterministic smooth function of the image. Photos are colour gradients with a
brighter rectangular "forged" region (its mask saved beside), authentic ones without it.
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any, Sequence

import cv2
import numpy as np

from mantra_jax.io.images import write_png_atomic


def fake_predict(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """(H, W, 3) uint8 -> ((H, W) float32 probabilities, tiled False): a blurred, stretched brightness."""
    gray = image.astype(np.float32).mean(axis=2) / 255.0
    p = cv2.GaussianBlur(gray, (0, 0), 1.5)
    return np.clip((p - 0.35) * 2.2, 0.0, 1.0).astype(np.float32), False


def write_photos(folder: pathlib.Path, names: Sequence[str], size: tuple[int, int] = (48, 64), seed: int = 0,
                 authentic_every: int = 4) -> list[tuple[pathlib.Path, pathlib.Path | None]]:
    """One PNG per name in ``folder`` (and a mask ``<name>_mask.png`` in ``folder/masks`` for forged ones:
    every ``authentic_every``-th is authentic); returns [(image, mask or None)]."""
    rng = np.random.default_rng(seed)
    h, w = size
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    out = []
    for k, name in enumerate(names):
        a, b = rng.uniform(20, 150, 3), rng.uniform(20, 150, 3)  # a colour gradient, a little texture
        ramp = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
        base = (a + (b - a) * ramp + rng.normal(0, 6, (h, w, 3))).astype(np.float32)
        mask = np.zeros((h, w), bool)
        forged = authentic_every == 0 or k % authentic_every != authentic_every - 1
        if forged:
            y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
            sh, sw = rng.integers(h // 5, h // 2), rng.integers(w // 5, w // 2)
            mask[y:y + sh, x:x + sw] = True
            base[mask] += rng.uniform(60, 110)
        image = np.clip(base, 0, 255).astype(np.uint8)
        path = folder / f"{name}.png"
        write_png_atomic(path, image)
        mask_path = None
        if forged:
            mask_path = folder / "masks" / f"{name}_mask.png"
            write_png_atomic(mask_path, mask)
        out.append((path, mask_path))
    return out


def make_detect_run(out_dir: pathlib.Path, photos: Sequence[pathlib.Path], *, bad: Sequence[pathlib.Path] = (),
                    interrupted_after: int | None = None) -> None:
    """What ``mantra detect PHOTOS... --out OUT_DIR`` writes (heat maps, overlays, maps, summary) with
    ``fake_predict``; ``bad`` files fail as unreadable; ``interrupted_after`` stops early (partial)."""
    from mantra_jax.cli.detect import _write_detect_summary
    from mantra_jax.infer.detect import detect_file, unique_stems
    from mantra_jax.io.outputs import OutputDir

    paths = [*photos, *bad]
    stems = unique_stems(paths)
    records: list[dict[str, Any]] = []
    args = argparse.Namespace(checkpoint="fake", weights={"name": "fake", "blob_id": "0" * 40})
    with OutputDir.open(out_dir, "detect") as out:
        for k, (path, stem) in enumerate(zip(paths, stems)):
            if interrupted_after is not None and k >= interrupted_after:
                break
            try:
                records.append(detect_file(path, stem, out_dir, fake_predict, claim=out.claim))
            except ValueError as e:
                records.append({"image": str(path), "stem": stem, "status": "error", "error": str(e)})
        run = {"memory": "2G", "tile": None, "bounded_shapes": True, "compile_cache": None, "compilations": 0,
               "compile_seconds": 0.0, "compute_seconds": 0.0, "cache_hits": 0, "cache_writes": 0}
        _write_detect_summary(out, args, {"variant": "fake"}, paths, [], records, run,
                              interrupted=interrupted_after is not None)


def make_eval_run(out_dir: pathlib.Path, pairs_list: Sequence[tuple[pathlib.Path, pathlib.Path | None]], *,
                  complete: bool = True) -> None:
    """What ``mantra eval --out OUT_DIR`` writes (metrics.json, per_image.csv, metrics.md, saved maps) with
    ``fake_predict``; ``complete=False`` writes the partial results of an interrupted run."""
    from mantra_jax.eval.pairs import Pair
    from mantra_jax.eval.runner import run_pairs, write_results
    from mantra_jax.eval.saved_maps import map_arrays, map_name, save_map
    from mantra_jax.io.outputs import OutputDir

    pairs = [Pair(pathlib.Path(i), None if m is None else pathlib.Path(m)) for i, m in pairs_list]
    with OutputDir.open(out_dir, "eval") as out:
        def on_map(pair: Any, image: Any, prob: Any, mask: Any) -> dict[str, str]:
            name = map_name(pair.key)
            save_map(out.claim(name)[0], map_arrays(image, prob, mask))
            return {"map_file": name}

        out.claim("metrics.json", "per_image.csv", "metrics.md")
        run = run_pairs(pairs, fake_predict, on_map=on_map)
        meta = {"checkpoint": "fake", "weights": {"name": "fake", "blob_id": "0" * 40}, "config": {"variant": "fake"},
                "pairs": "fake", "n_pairs": len(pairs), "mask_rule": "bright",
                "mismatched_masks": "resized (nearest neighbour)", "tile": None, "auto_tile_pixels": 1 << 20,
                "bounded_shapes": True, "weights_sha256": "0" * 64, "complete": complete, "n_done": len(pairs)}
        write_results(out_dir, run, meta, name="fake")


def make_robustness_run(out_dir: pathlib.Path, pairs_list: Sequence[tuple[pathlib.Path, pathlib.Path | None]],
                        attacks: dict[str, Sequence[float]] | None = None) -> list[dict[str, Any]]:
    """What ``mantra robustness --out OUT_DIR`` writes (robustness.json / .csv) with ``fake_predict``."""
    from mantra_jax.eval.pairs import Pair
    from mantra_jax.eval.robustness import run_robustness
    from mantra_jax.eval.runner import json_safe
    from mantra_jax.io.atomic import write_text_atomic
    from mantra_jax.io.outputs import OutputDir

    attacks = attacks or {"jpeg": (90, 60), "gaussian_blur": (3, 7)}
    pairs = [Pair(pathlib.Path(i), None if m is None else pathlib.Path(m)) for i, m in pairs_list]
    rows = run_robustness(pairs, fake_predict, attacks, seed=0)
    with OutputDir.open(out_dir, "robustness") as out:
        path, = out.claim("robustness.json")
        doc = {"checkpoint": "fake", "weights": None, "config": {"variant": "fake"}, "pairs": "fake", "seed": 0,
               "attacks": {k: list(v) for k, v in attacks.items()}, "rows": rows}
        write_text_atomic(path, json.dumps(json_safe(doc), indent=2) + "\n")
    return rows
