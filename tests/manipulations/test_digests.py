"""Reproducibility pins: the "fixed" synthetic sets must not change silently with a library upgrade.

Every manipulation type applied to one fixed photo (noise types with their own seeded generator), and the
first records of the fixed IMC validation set (scikit-image's bundled photos, the configs' validation
seed), are compared with digests pinned in ``digests.json``. An OpenCV, Pillow, scikit-image or numpy
release that changes an output fails with the names of the types that changed.

The input is scikit-image's whole astronaut taken every 8th pixel (64 x 64): textured and with many
colours, so that every type's output differs from every other's (the earlier 64 x 64 crop had too few
colours for the adaptive palettes: Quantization-C150 .. C225 all gave its 133 colours, one digest).
``test_every_type_has_its_own_output`` keeps it so.

What is pinned per output: the sha256 of its uint8 bytes, and a thumbnail: the sums of each channel over
a 4 x 4 grid of blocks (16 x 16 pixels here; the IMC records' 32 x 32: 8 x 8). A CPU with other SIMD
paths (numpy's vectorised exp/log, OpenCV's dispatch) can move an occasional pixel by one grey level
where a float result sits on a rounding boundary: that changes the sha and a block sum by 1 per pixel.
So an output whose sha differs passes only while no block sum moved by more than THUMB_ATOL (16: sixteen
one-level flips in one block, 1/16 of a grey level of a 16 x 16 block's mean). The thumbnail sees where
the pixels are: a mirrored, upside-down, transposed or one-pixel cyclically shifted output moves some
block sum by far more for each of the 385 types (``test_moved_pixels_are_seen_for_every_type``), as does
any real change of an algorithm. Both venvs here (Python 3.11 / numpy 2.4.6 / scipy 1.17 and 3.12 /
numpy 2.5.5 / scipy 1.18; OpenCV 5.0, Pillow 13.0 and scikit-image 0.26 alike) give identical shas.

Regenerate after an intended change (and say why in the commit):
    PYTHONPATH=. python tests/manipulations/test_digests.py --write
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys

import numpy as np

DIGESTS = pathlib.Path(__file__).with_name("digests.json")
THUMB_GRID, THUMB_ATOL = 4, 16
VAL_SEED, VAL_RECORDS, VAL_CROP = 1, 16, 32  # the configs' val_seed; a few records, small crops


def fixed_photo() -> np.ndarray:
    """scikit-image's astronaut (512 x 512) every 8th pixel: (64, 64, 3) uint8."""
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[::8, ::8])


def thumbnail(image: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 -> (THUMB_GRID, THUMB_GRID, C) int64 sums over a grid of near-equal blocks."""
    img = np.asarray(image, np.int64)
    rows, cols = (np.array_split(np.arange(n), THUMB_GRID) for n in img.shape[:2])
    return np.array([[img[r[0]:r[-1] + 1, c[0]:c[-1] + 1].sum((0, 1)) for c in cols] for r in rows])


def entry(image: np.ndarray) -> dict:
    img = np.ascontiguousarray(image, np.uint8)
    return {"sha256": hashlib.sha256(img.tobytes()).hexdigest()[:32], "shape": list(img.shape),
            "thumbnail": " ".join(str(int(v)) for v in thumbnail(img).ravel())}


def type_outputs(photo: np.ndarray) -> dict[str, np.ndarray]:
    """Every catalogue type applied to ``photo`` (its own seeded generator where it draws noise)."""
    from mantra_jax.manipulations import CATALOGUE
    return {m.name: m.apply(photo, np.random.default_rng(m.index) if m.uses_rng else None) for m in CATALOGUE}


def current() -> dict:
    from mantra_jax.data.imc_source import IMCSource
    from mantra_jax.data.patches import PatchBank

    photo = fixed_photo()
    out = {"input": entry(photo), "types": {k: entry(v) for k, v in type_outputs(photo).items()},
           "imc_validation": {}}
    source = IMCSource(PatchBank.build(None, "validation"), "validation", seed=VAL_SEED, num_records=VAL_RECORDS,
                       crop_size=VAL_CROP)
    for i in range(VAL_RECORDS):
        r = source[i]
        out["imc_validation"][str(i)] = {**entry(r["image"]), "label": int(r["label"])}
    return out


def changed(pinned: dict, now: dict) -> list[str]:
    """Names of the outputs whose sha differs and whose thumbnail moved beyond THUMB_ATOL (or whose shape
    or label differs, or which appeared or disappeared)."""
    bad = []
    for name in sorted(set(pinned) | set(now)):
        a, b = pinned.get(name), now.get(name)
        if a is None or b is None:
            bad.append(f"{name} ({'new' if a is None else 'gone'})")
        elif a["sha256"] != b["sha256"]:
            ta, tb = (np.array(e["thumbnail"].split(), np.int64) for e in (a, b))
            moved = int(np.abs(ta - tb).max()) if ta.shape == tb.shape else -1
            if a["shape"] != b["shape"] or a.get("label") != b.get("label") or not 0 <= moved <= THUMB_ATOL:
                bad.append(f"{name} (thumbnail moved {moved})")
    return bad


def test_manipulation_outputs_and_imc_validation_set_match_the_pinned_digests():
    pinned, now = json.loads(DIGESTS.read_text()), current()
    assert not changed({"input": pinned["input"]}, {"input": now["input"]}), \
        "the fixed input photo itself changed (scikit-image data?): every digest below is then moot"
    types = changed(pinned["types"], now["types"])
    assert not types, f"{len(types)} manipulation types changed their output: {', '.join(types)}"
    val = changed(pinned["imc_validation"], now["imc_validation"])
    assert not val, f"fixed IMC validation records changed: {', '.join(val)}"


def test_a_changed_type_is_named_and_platform_noise_is_not():
    photo = fixed_photo()
    brighter = photo.copy()
    brighter[:16, :16, 0] = np.minimum(brighter[:16, :16, 0].astype(int) + 1, 255)  # one block, one level up
    assert changed({"A": entry(photo), "B": entry(photo)}, {"A": entry(photo), "B": entry(brighter)}) == [
        f"B (thumbnail moved {int(np.sum(brighter[:16, :16, 0] != photo[:16, :16, 0]))})"]
    # platform noise: one grey level up or down at 1 % of the pixels (about 2.6 per block and channel)
    rng = np.random.default_rng(0)
    noisy = photo.astype(int) + (rng.random(photo.shape) < 0.01) * rng.choice([-1, 1], photo.shape)
    noisy = np.clip(noisy, 0, 255).astype(np.uint8)
    assert entry(noisy)["sha256"] != entry(photo)["sha256"]
    assert changed({"C": entry(photo)}, {"C": entry(noisy)}) == []


MOVES = {"mirrored": lambda a: a[:, ::-1], "upside-down": lambda a: a[::-1], "transposed": lambda a: a.swapaxes(0, 1),
         "shifted down 1": lambda a: np.roll(a, 1, 0), "shifted right 1": lambda a: np.roll(a, 1, 1)}


def test_moved_pixels_are_seen_for_every_type():
    # the fallback must see positions: each type's output moved (where that changes its bytes) is a change
    missed = []
    for name, out in type_outputs(fixed_photo()).items():
        for move, f in MOVES.items():
            moved = np.ascontiguousarray(f(out))
            if moved.tobytes() != out.tobytes() and not changed({name: entry(out)}, {name: entry(moved)}):
                missed.append(f"{name} {move}")
    assert not missed, f"{len(missed)} moved outputs pass the fallback: {', '.join(missed[:20])}"


def test_every_type_has_its_own_output():
    pinned = json.loads(DIGESTS.read_text())["types"]
    by_sha: dict[str, list[str]] = {}
    for name, e in pinned.items():
        by_sha.setdefault(e["sha256"], []).append(name)
    shared = [names for names in by_sha.values() if len(names) > 1]
    assert not shared, f"types sharing one digest on the fixed input (their parameters untested): {shared}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: PYTHONPATH=. python tests/manipulations/test_digests.py --write")
    DIGESTS.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {DIGESTS}")
