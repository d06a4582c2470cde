"""Reproducibility pins: the "fixed" synthetic sets must not change silently with a library upgrade.

Every manipulation type applied to one fixed photo crop (noise types with their own seeded generator), and
the first records of the fixed IMC validation set (scikit-image's bundled photos, the configs' validation
seed), are compared with digests pinned in ``digests.json``. An OpenCV, Pillow, scikit-image or numpy
release that changes an output fails with the names of the types that changed.

What is pinned per output: the sha256 of its uint8 bytes, and a tolerance fingerprint, the per-channel mean
and standard deviation. A CPU with other SIMD paths (numpy's vectorised exp/log, OpenCV's dispatch) can
move an occasional pixel by one grey level where a float result sits on a rounding boundary: that changes
the sha but moves no mean or std by more than a few 1e-3 (one flip in a 64 x 64 channel moves the mean by
2.4e-4). So an output whose sha differs passes only while its fingerprint stays within FINGERPRINT_ATOL
(0.05 grey levels: ~200 one-level flips per channel); a real change of an algorithm moves it by far more.
Both venvs here (Python 3.11 / numpy 2.4.6 / scipy 1.17 and 3.12 / numpy 2.5.5 / scipy 1.18; OpenCV 5.0,
Pillow 13.0 and scikit-image 0.26 alike) give identical shas.

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
FINGERPRINT_ATOL = 0.05
VAL_SEED, VAL_RECORDS, VAL_CROP = 1, 16, 32  # the configs' val_seed; a few records, small crops


def fixed_photo() -> np.ndarray:
    """64 x 64 crop of scikit-image's astronaut (the manipulation tests' ``photo``)."""
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[40:104, 190:254])


def entry(image: np.ndarray) -> dict:
    img = np.ascontiguousarray(image, np.uint8)
    flat = img.reshape(-1, img.shape[-1]).astype(np.float64)
    return {"sha256": hashlib.sha256(img.tobytes()).hexdigest()[:32], "shape": list(img.shape),
            "fingerprint": [round(float(v), 4) for v in np.concatenate([flat.mean(0), flat.std(0)])]}


def current() -> dict:
    from mantra_jax.data.imc_source import IMCSource
    from mantra_jax.data.patches import PatchBank
    from mantra_jax.manipulations import CATALOGUE

    photo = fixed_photo()
    out = {"input": entry(photo), "types": {}, "imc_validation": {}}
    for m in CATALOGUE:
        rng = np.random.default_rng(m.index) if m.uses_rng else None
        out["types"][m.name] = entry(m.apply(photo, rng))
    source = IMCSource(PatchBank.build(None, "validation"), "validation", seed=VAL_SEED, num_records=VAL_RECORDS,
                       crop_size=VAL_CROP)
    for i in range(VAL_RECORDS):
        r = source[i]
        out["imc_validation"][str(i)] = {**entry(r["image"]), "label": int(r["label"])}
    return out


def changed(pinned: dict, now: dict) -> list[str]:
    """Names of the outputs whose sha differs and whose fingerprint moved beyond FINGERPRINT_ATOL (or whose
    shape or label differs, or which appeared or disappeared)."""
    bad = []
    for name in sorted(set(pinned) | set(now)):
        a, b = pinned.get(name), now.get(name)
        if a is None or b is None:
            bad.append(f"{name} ({'new' if a is None else 'gone'})")
        elif a["sha256"] != b["sha256"]:
            moved = float(np.max(np.abs(np.subtract(a["fingerprint"], b["fingerprint"]))))
            if a["shape"] != b["shape"] or a.get("label") != b.get("label") or moved > FINGERPRINT_ATOL:
                bad.append(f"{name} (fingerprint moved {moved:.3g})")
    return bad


def test_manipulation_outputs_and_imc_validation_set_match_the_pinned_digests():
    pinned, now = json.loads(DIGESTS.read_text()), current()
    assert not changed({"input": pinned["input"]}, {"input": now["input"]}), \
        "the fixed input photo itself changed (scikit-image data?): every digest below is then moot"
    types = changed(pinned["types"], now["types"])
    assert not types, f"{len(types)} manipulation types changed their output: {', '.join(types)}"
    val = changed(pinned["imc_validation"], now["imc_validation"])
    assert not val, f"fixed IMC validation records changed: {', '.join(val)}"


def test_a_changed_type_is_named():
    pinned = {"A": entry(np.zeros((4, 4, 3), np.uint8)), "B": entry(np.zeros((4, 4, 3), np.uint8))}
    noise = np.zeros((4, 4, 3), np.uint8)
    noise[0, 0, 0] = 1  # on a 4 x 4 image one level up is a real change (std moves by 0.24)
    assert changed(pinned, {"A": entry(np.zeros((4, 4, 3), np.uint8)), "B": entry(noise)}) == [
        "B (fingerprint moved 0.242)"]
    big = np.zeros((64, 64, 3), np.uint8)
    flip = big.copy()
    flip[0, 0, 0] = 1  # on a 64 x 64 image one flip is platform noise
    assert changed({"C": entry(big)}, {"C": entry(flip)}) == []


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: PYTHONPATH=. python tests/manipulations/test_digests.py --write")
    DIGESTS.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {DIGESTS}")
