"""``mantra eval --benchmark NAME --data-dir D``: a prepared tfds benchmark scored exactly as its files are.

A tiny COVERAGE-layout folder (2 ids, 8 x 8 images, one released mask of another size) is evaluated once
from the files (``--pairs`` with COVERAGE's ``tampered,original,mask`` CSV) and once through the builder,
prepared into a data folder on first use; the tiny model compiles once per image shape.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from mantra_jax import cli
from tests.conftest import import_or_absent

import_or_absent("tensorflow_datasets")

S = 8  # the smallest side read (DEFAULT_MIN_SIZE), as tests/cli/test_hostile_inputs.py: one compiled shape


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
    """COVERAGE's converted layout: tampered/{N}t.png, original/{N}.png, mask/{N}forged.png, and pairs.csv."""
    root = tmp_path_factory.mktemp("coverage")
    rng = np.random.default_rng(0)
    for sub in ("tampered", "original", "mask"):
        (root / sub).mkdir()
    for i in (1, 2):
        Image.fromarray(rng.integers(0, 256, (S, S, 3), dtype=np.uint8)).save(root / "tampered" / f"{i}t.png")
        Image.fromarray(rng.integers(0, 256, (S, S, 3), dtype=np.uint8)).save(root / "original" / f"{i}.png")
        side = S if i == 1 else S - 2  # id 2's mask has another size, as nine of the release's do
        mask = np.zeros((side, side), np.uint8)
        mask[1:side // 2 + 1, 1:side - 1] = 255
        Image.fromarray(mask).save(root / "mask" / f"{i}forged.png")
    (root / "pairs.csv").write_text("tampered,original,mask\n" + "".join(
        f"tampered/{i}t.png,original/{i}.png,mask/{i}forged.png\n" for i in (1, 2)))
    return root


def _run(*args):
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as e:  # argparse's own errors exit from inside parse_args
            code = e.code
    assert "Traceback" not in err.getvalue()
    return code, err.getvalue()


def _rows(out):
    return list(csv.DictReader((out / "per_image.csv").open()))


def test_benchmark_eval_equals_the_folder_eval_and_resumes(tiny_ckpt, manual, tmp_path, monkeypatch):
    data = tmp_path / "tfds"
    bench = ["eval", "--benchmark", "coverage", "--data-dir", data, "-c", tiny_ckpt]
    code, _ = _run("eval", "--pairs", manual / "pairs.csv", "-c", tiny_ckpt, "-o", tmp_path / "files")
    assert code == cli.EXIT_OK
    code, err = _run(*bench, "--manual-dir", manual, "-o", tmp_path / "b")
    assert code == cli.EXIT_OK and "1 mask(s) had another size" in err
    files, stored = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("files", "b"))
    assert stored["metrics"] == files["metrics"] and stored["metrics"]["n_images"] == 4
    assert stored["run"]["complete"] and stored["run"]["mask_rule"] == "layout"
    assert [r["name"] for r in _rows(tmp_path / "b")] == ["tampered/1t.png", "original/1.png", "tampered/2t.png",
                                                         "original/2.png"]
    # the saved map's file name is derived from the image's key (its path), which differs between the two
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("name", "seconds", "map_file")}  # noqa: E731
                          for r in rows]
    assert strip(_rows(tmp_path / "b")) == strip(_rows(tmp_path / "files"))
    assert "| coverage |" in (tmp_path / "b" / "metrics.md").read_text()

    # the same command again reads the prepared data alone (no --manual-dir) and redoes no image
    import mantra_jax.infer.tiled as tiled

    calls = []
    monkeypatch.setattr(tiled, "predict_auto", lambda *a, **k: calls.append(1))
    code, err = _run(*bench, "-o", tmp_path / "b")
    assert code == cli.EXIT_OK and not calls and "4 of 4 image(s) already done" in err
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["metrics"] == files["metrics"]


def test_benchmark_eval_never_overwrites_a_users_file(tiny_ckpt, manual, tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "metrics.json").write_text("mine\n")
    code, err = _run("eval", "--benchmark", "coverage", "--data-dir", tmp_path / "d", "--manual-dir", manual,
                     "-c", tiny_ckpt, "-o", tmp_path / "o")
    assert code == cli.EXIT_USAGE and "never overwritten" in err.strip().splitlines()[-1]
    assert (tmp_path / "o" / "metrics.json").read_text() == "mine\n"


@pytest.mark.parametrize("extra,match", [
    (["--benchmark", "casia"], "unknown benchmark 'casia'"),
    (["--benchmark", "coverage"], "needs --data-dir"),
    (["--benchmark", "coverage", "--data-dir", "{tmp}/empty"], "not prepared under"),
    (["--benchmark", "coverage", "--data-dir", "{tmp}/d", "--manual-dir", "{tmp}/nowhere"], "does not exist"),
    (["--benchmark", "coverage", "--data-dir", "{tmp}/d", "--manual-dir", "{tmp}"], "no folder holding mask/"),
    (["--benchmark", "coverage", "--data-dir", "{tmp}/d", "--mask-rule", "dark"], "does not apply"),
    (["--pairs", "p.csv", "--data-dir", "{tmp}/d"], "go with --benchmark"),
])
def test_bad_benchmark_input_is_one_line_and_status_2(tiny_ckpt, tmp_path, extra, match):
    code, err = _run("eval", *(a.format(tmp=tmp_path) for a in extra), "-c", tiny_ckpt, "-o", tmp_path / "o")
    assert code == cli.EXIT_USAGE and match in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_robustness_reads_a_prepared_benchmark_like_eval(tiny_ckpt, manual, tmp_path):
    bench = ("--benchmark", "coverage", "--data-dir", tmp_path / "d", "--manual-dir", manual, "-c", tiny_ckpt)
    code, err = _run("robustness", *bench, "-o", tmp_path / "r", "--attacks", "gaussian_noise",
                     "--levels", "gaussian_noise=5")
    assert code == cli.EXIT_OK, err
    rows = list(csv.DictReader((tmp_path / "r" / "robustness.csv").open()))
    assert [(r["attack"], r["level"]) for r in rows] == [("none", ""), ("gaussian_noise", "5")]
    code, _ = _run("eval", *bench, "-o", tmp_path / "e")
    assert code == cli.EXIT_OK
    clean = json.loads((tmp_path / "e" / "metrics.json").read_text())["metrics"]
    assert int(rows[0]["n_images"]) == clean["n_images"] == 4  # the split's 2 tampered + 2 originals
    # robustness's clean row is eval's run: the same images, weights and run_pairs scoring, and both files are
    # written with json's shortest round-trip float repr, so every shared metric is the same double: exact
    from mantra_jax.eval.robustness import METRICS

    row = json.loads((tmp_path / "r" / "robustness.json").read_text())["rows"][0]
    shared = sorted(set(row) & set(clean))
    assert set(METRICS) | {"n_images"} <= set(shared), shared
    assert all(clean[k] is not None for k in METRICS), clean  # every metric defined: both classes present
    assert {k: row[k] for k in shared} == {k: clean[k] for k in shared}
    assert [rows[0][k] for k in METRICS] == [f"{clean[k]:.6g}" for k in METRICS]  # the CSV: 6 significant digits


@pytest.mark.parametrize("command", ["eval", "robustness"])
def test_benchmark_without_tensorflow_datasets_is_one_line_and_status_2(tiny_ckpt, tmp_path, monkeypatch, command):
    import sys

    monkeypatch.setitem(sys.modules, "mantra_jax.datasets.benchmarks", None)  # import fails as if absent
    code, err = _run(command, "--benchmark", "coverage", "--data-dir", tmp_path, "-c", tiny_ckpt, "-o", tmp_path / "o")
    assert code == cli.EXIT_USAGE and len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert "--benchmark needs tensorflow-datasets" in err and "pip install -e '.[data]'" in err
    assert not (tmp_path / "o").exists()
