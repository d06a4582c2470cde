"""Fake run folders (no model: ``experiments.report_fakes``) with hostile file names, made once per module."""

import os

import pytest

from experiments import report_fakes as fakes

# quotes, markup, an entity, unicode, a spreadsheet formula, and a name that is not UTF-8
NAMES = ("plain", 'quote"d', "a<b&c", "caf\u00e9 \u5199\u771f", "=formula", "x'y", os.fsdecode(b"raw\xe9"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"photos": [(image, mask)], "detect" / "eval" / "robustness": folder} of complete runs."""
    root = tmp_path_factory.mktemp("runs")
    photos = fakes.write_photos(root / "photos", NAMES)
    bad = root / "photos" / "broken.png"
    bad.write_bytes(b"not an image")
    fakes.make_detect_run(root / "detect", [p for p, _ in photos], bad=[bad])
    fakes.make_eval_run(root / "eval", photos)
    fakes.make_robustness_run(root / "robustness", photos)
    return {"root": root, "photos": photos, "bad": bad, "detect": root / "detect", "eval": root / "eval",
            "robustness": root / "robustness"}
