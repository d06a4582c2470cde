"""Sensitivity study (paper Fig. 4a): detector scores on one enhancement-forgery set per manipulation type.

    python experiments/sensitivity.py --checkpoint weights.msgpack --out /tmp/sens \
        [--photos ../shared/data/pristine/kodak24] [--patches 4] [--patch_size 128] \
        [--families GaussianBlur,JPEGCompress] [--max_types_per_family 3]

Patches come from ``mantra_jax.data.patches.PatchBank`` (the test split of --photos, or scikit-image's
photos when none is given); forgeries from ``mantra_jax.eval.sensitivity`` (masks and blending from
``mantra_jax.data``). Small by default (4 patches of 128 px, 3 types per family spread over the family's
parameter range); the paper used 5,000 patches per type. Writes ``sensitivity.csv``, ``sensitivity.json``
and ``sensitivity.png`` (pixel AUC per type, one panel per family).
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

from absl import flags

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Detection checkpoint (.msgpack, .h5 or Orbax dir).",
                                  required=True)
_OUT = flags.DEFINE_string("out", None, "Output folder.", required=True)
_PHOTOS = flags.DEFINE_string("photos", None, "Folder of pristine photos (default: scikit-image's).")
_SPLIT = flags.DEFINE_string("split", "test", "Photo split the patches come from.")
_PATCHES = flags.DEFINE_integer("patches", 4, "Patches per forgery set.", lower_bound=1)
_PATCH_SIZE = flags.DEFINE_integer("patch_size", 128, "Patch side in pixels.", lower_bound=16)
_FAMILIES = flags.DEFINE_string("families", "all", "Comma-separated manipulation families, or 'all'.")
_MAX_TYPES = flags.DEFINE_integer("max_types_per_family", 3,
                                  "Types per family, evenly spread over its parameters (0 = all).", lower_bound=0)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of masks and noise.")
_TILE = flags.DEFINE_integer("tile", None, "Tiled inference with this tile size (default: whole patch).")


def _param_key(token: str) -> tuple:
    """Sort key of a parameter token such as 'K29', 's0.41', 'Q75-Q90': its numbers, then the text."""
    return tuple(float(v) for v in re.findall(r"\d+(?:\.\d+)?", token)), token


def select_types(catalogue, families: str, per_family: int) -> list:
    """Catalogue entries of the chosen families, each family's types sorted by parameter and subsampled."""
    by_family: dict[str, list] = {}
    for m in catalogue:
        by_family.setdefault(m.family, []).append(m)
    names = list(by_family) if families == "all" else [f.strip() for f in families.split(",") if f.strip()]
    unknown = [f for f in names if f not in by_family]
    if unknown:
        raise ValueError(f"unknown famil(ies) {unknown}; known: {sorted(by_family)}")
    chosen = []
    for family in names:
        types = sorted(by_family[family], key=lambda m: _param_key(m.parameter))
        if per_family and len(types) > per_family:
            picks = sorted({round(i * (len(types) - 1) / max(per_family - 1, 1)) for i in range(per_family)})
            types = [types[i] for i in picks]
        chosen.extend(types)
    return chosen


def main(argv: list[str]) -> None:
    del argv
    import numpy as np
    from tqdm import tqdm

    from mantra_jax.cli.common import load_detector, make_predictor
    from mantra_jax.data.patches import PatchBank
    from mantra_jax.eval.runner import json_safe, rows_csv
    from mantra_jax.eval.sensitivity import SUMMARY, plot_study, study
    from mantra_jax.io.atomic import write_text_atomic
    from mantra_jax.manipulations import CATALOGUE

    model, variables, cfg = load_detector(_CHECKPOINT.value)
    predict_map = make_predictor(model, variables, _TILE.value, 1 << 62)
    types = select_types(CATALOGUE, _FAMILIES.value, _MAX_TYPES.value)
    bank = PatchBank.build(_PHOTOS.value, _SPLIT.value, size=_PATCH_SIZE.value)
    if len(bank) < _PATCHES.value:
        print(f"sensitivity: only {len(bank)} patch(es) available in split {_SPLIT.value}", file=sys.stderr)
    patches = bank.patches[:_PATCHES.value]
    bar = tqdm(total=len(types), desc="sensitivity", file=sys.stderr, disable=None)

    def progress(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    rows = study(patches, types, lambda image: predict_map(image)[0], seed=_SEED.value, progress=progress)
    bar.close()
    out = pathlib.Path(_OUT.value)
    out.mkdir(parents=True, exist_ok=True)
    columns = ("name", "family", "parameter", "group", "n_images", *SUMMARY, "mean_abs_change")
    write_text_atomic(out / "sensitivity.csv", rows_csv(rows, columns))
    doc = {"checkpoint": _CHECKPOINT.value, "config": cfg, "photos": _PHOTOS.value or "scikit-image",
           "split": _SPLIT.value, "patches": int(len(patches)), "patch_size": _PATCH_SIZE.value,
           "seed": _SEED.value, "rows": rows}
    write_text_atomic(out / "sensitivity.json", json.dumps(json_safe(doc), indent=2) + "\n")
    plot_study(rows, out / "sensitivity.png")
    aucs = [r["pixel_auc"] for r in rows if r["pixel_auc"] is not None]
    print(f"sensitivity: {len(rows)} type(s), mean pixel AUC {np.mean(aucs) if aucs else float('nan'):.3f}; "
          f"results in {out}", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)
    from experiments.script_main import script_main

    script_main(main)
