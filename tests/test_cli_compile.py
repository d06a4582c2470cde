"""`mantra eval` compile accounting, bounded shapes and the persistent compilation cache option."""

import csv
import json

from mantra_jax import cli
from tests.test_cli import _run, bench, ckpt  # noqa: F401  (fixtures)


def test_eval_reports_compile_seconds_apart_and_bounded_shapes_give_the_same_metrics(ckpt, bench, tmp_path,
                                                                                     capsys):
    docs = []
    for flags in ([], ["--bounded-shapes"]):
        out = tmp_path / f"o{len(docs)}"
        code, _, err = _run(["eval", "--pairs", bench / "pairs.csv", "-c", ckpt, "-o", out, "--compile-cache",
                             "off", *flags], capsys)
        assert code == cli.EXIT_OK and "compilation(s) in" in err
        docs.append(json.loads((out / "metrics.json").read_text()))
    for doc in docs:
        run = doc["run"]
        assert run["compile_cache"] is None
        assert run["compilations"] >= 0 and 0 <= run["compile_seconds"] <= run["seconds"]
        assert abs(run["compile_seconds"] + run["compute_seconds"] - run["seconds"]) < 0.02
    assert docs[1]["run"]["bounded_shapes"] is True and docs[1]["run"]["compilations"] >= 1
    # the maps agree within float32 rounding (tests/infer/test_tiled.py), hence the image scores (map means)
    scores = [[float(r["image_score"]) for r in csv.DictReader((tmp_path / f"o{i}" / "per_image.csv").open())]
              for i in (0, 1)]
    assert len(scores[0]) == 3 and max(abs(a - b) for a, b in zip(*scores)) < 1e-5


def test_an_unusable_compile_cache_folder_is_a_warning_not_an_error(ckpt, bench, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = _run(["eval", "--pairs", bench / "pairs.csv", "-c", ckpt, "-o", tmp_path / "o", "--limit", "1",
                         "--compile-cache", blocker / "xla"], capsys)
    assert code == cli.EXIT_OK and "warning: compile cache off" in err
