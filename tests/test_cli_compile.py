"""`mantra eval` compile accounting, bounded shapes and the persistent compilation cache option."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from mantra_jax import cli
from tests.test_cli import _run, bench, ckpt  # noqa: F401  (fixtures)


# Three image sizes, all axes >= tile + 2 x the tiny model's LADN halo (16 + 48), none used by other tests: with
# --tile 16 every pass-1 region is 44 x 44 and every pass-2 region 64 x 64 (the ladder has one length each).
SIZES = ((65, 71), (67, 77), (73, 69))


@pytest.fixture(scope="module")
def sizes_bench(tmp_path_factory):
    d = tmp_path_factory.mktemp("sizes")
    rows = []
    for k, (h, w) in enumerate(SIZES):
        Image.fromarray(np.random.default_rng(20 + k).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"i{k}.png")
        mask = np.zeros((h, w), np.uint8)
        mask[10:30, 20:40] = 255
        Image.fromarray(mask).save(d / f"i{k}_gt.png")
        rows.append(f"i{k}.png,i{k}_gt.png")
    (d / "pairs.csv").write_text("image,mask\n" + "\n".join(rows) + "\n")
    return d


@pytest.mark.slow  # ~35 s: three image sizes through eval twice, bounded and not
def test_eval_compiles_a_bounded_number_of_shapes_by_default_and_equals_whole_image_runs(ckpt, sizes_bench,
                                                                                          tmp_path, capsys,
                                                                                          fresh_programs):
    docs, scores = [], []
    for flags in (["--tile", "16"], ["--no-bounded-shapes"]):  # default: bounded; opt out: each size whole
        out = tmp_path / f"o{len(docs)}"
        code, _, err = _run(["eval", "--pairs", sizes_bench / "pairs.csv", "-c", ckpt, "-o", out,
                             "--compile-cache", "off", *flags], capsys)
        assert code == cli.EXIT_OK and "compilation(s) in" in err
        docs.append(json.loads((out / "metrics.json").read_text()))
        rows = list(csv.DictReader((out / "per_image.csv").open()))
        assert len(rows) == len(SIZES)
        scores.append([(r["tiled"], float(r["image_score"]), float(r["auc"])) for r in rows])
    for doc in docs:
        run = doc["run"]
        assert run["compile_cache"] is None
        assert 0 <= run["compile_seconds"] <= run["seconds"]
        assert abs(run["compile_seconds"] + run["compute_seconds"] - run["seconds"]) < 0.02
    bounded, whole = (d["run"] for d in docs)
    assert bounded["bounded_shapes"] is True and whole["bounded_shapes"] is False
    # one pass-1 and one pass-2 program for all three sizes; whole-image inference compiles one per size
    assert 1 <= bounded["compilations"] <= 2 < len(SIZES) == whole["compilations"]
    assert all(t == "True" for t, _, _ in scores[0]) and all(t == "False" for t, _, _ in scores[1])
    # tiled maps equal whole-image maps within float32 rounding (tests/infer/test_tiled.py): so do their
    # means (image scores) and, up to ties, the pixel AUCs
    for (_, s_b, a_b), (_, s_w, a_w) in zip(*scores):
        assert abs(s_b - s_w) < 1e-5 and abs(a_b - a_w) < 1e-4


def test_an_unusable_compile_cache_folder_is_a_warning_not_an_error(ckpt, bench, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = _run(["eval", "--pairs", bench / "pairs.csv", "-c", ckpt, "-o", tmp_path / "o", "--limit", "1",
                         "--compile-cache", blocker / "xla"], capsys)
    assert code == cli.EXIT_OK and "warning: compile cache off" in err
