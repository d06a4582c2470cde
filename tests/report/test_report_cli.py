"""``--report`` (default) and ``--no-report`` on detect, eval and robustness, through the real command on a
tiny checkpoint; the report's files are checked free before the first image."""

import json

import numpy as np
import pytest
from PIL import Image

from mantra_jax import cli
from mantra_jax.eval.saved_maps import load_map
from mantra_jax.io.outputs import read_manifest
from tests.conftest import tiny_checkpoint

H, W = 24, 32


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), 4)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    rng = np.random.default_rng(0)
    lines = []
    for k, name in enumerate(("a&b", "c<d")):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(d / f"{name}.png")
        mask = np.zeros((H, W), np.uint8)
        mask[4:14, 6 + k:20] = 255
        Image.fromarray(mask).save(d / f"{name}_gt.png")
        lines.append(f'"{name}.png","{name}_gt.png"')
    (d / "pairs.csv").write_text("image,mask\n" + "\n".join(lines) + "\n")
    return d


def _run(args, capsys):
    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _reported(folder):
    listed = read_manifest(folder)
    return "report.html" in listed and (folder / "report.html").is_file()


@pytest.mark.slow  # about 15 s on 2 cores (three commands compile the tiny model)
def test_detect_eval_and_robustness_write_their_report_by_default(ckpt, bench, tmp_path, capsys):
    code, err = _run(["detect", bench / "a&b.png", bench / "c<d.png", "-c", ckpt, "-o", tmp_path / "d"], capsys)
    assert code == cli.EXIT_OK and "report in" in err and _reported(tmp_path / "d")
    assert len(list((tmp_path / "d" / "report").glob("d*_heatmap.png"))) == 2

    code, err = _run(["eval", "--pairs", bench / "pairs.csv", "-c", ckpt, "-o", tmp_path / "e"], capsys)
    assert code == cli.EXIT_OK and _reported(tmp_path / "e")
    rows = (tmp_path / "e" / "per_image.csv").read_text()
    maps = sorted((tmp_path / "e" / "maps").glob("*.npz"))
    assert len(maps) == 2 and all(f"maps/{m.name}" in rows for m in maps)
    assert all(load_map(m)["hist"].sum() == H * W for m in maps)  # every pixel of the full map counted
    assert {f"maps/{m.name}" for m in maps} <= read_manifest(tmp_path / "e")
    text = (tmp_path / "e" / "report.html").read_text(encoding="utf-8")
    doc = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert f'data-v="{doc["metrics"]["pixel_auc"]!r}"' in text and "a&amp;b.png" in text

    code, err = _run(["robustness", "--pairs", bench / "pairs.csv", "-c", ckpt, "-o", tmp_path / "r",
                      "--attacks", "jpeg", "--levels", "jpeg=80"], capsys)
    assert code == cli.EXIT_OK and _reported(tmp_path / "r") and (tmp_path / "r" / "report" / "robustness_0.svg").is_file()


def test_no_report_writes_none_and_a_users_report_stops_the_run_before_the_first_image(ckpt, bench, tmp_path, capsys):
    code, _ = _run(["detect", bench / "a&b.png", "-c", ckpt, "-o", tmp_path / "n", "--no-report"], capsys)
    assert code == cli.EXIT_OK and not (tmp_path / "n" / "report.html").exists()
    assert not (tmp_path / "n" / "report").exists()
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "report.html").write_text("mine")
    code, err = _run(["detect", bench / "a&b.png", "-c", ckpt, "-o", tmp_path / "u"], capsys)
    assert code == cli.EXIT_USAGE and "report.html" in err and "not written by mantra" in err
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == ["report.html"]  # no trace
    code, _ = _run(["detect", bench / "a&b.png", "-c", ckpt, "-o", tmp_path / "u", "--no-report"], capsys)
    assert code == cli.EXIT_OK and (tmp_path / "u" / "report.html").read_text() == "mine"
