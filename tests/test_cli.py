"""The `mantra` command end to end on tiny synthetic files with a tiny checkpoint made here."""

import csv
import io
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from mantra_jax import cli
from mantra_jax.cli.common import NO_CHECKPOINT
from tests.conftest import tiny_checkpoint

H, W = 24, 32
CFG = {"kind": "mantranet", "variant": "tiny"}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), 5)


def _rgb(seed, h=H, w=W):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Good files (RGB, gray, alpha, 16-bit, CMYK) and bad ones (truncated, text, 1x1, too many pixels)."""
    d = tmp_path_factory.mktemp("in")
    Image.fromarray(_rgb(0)).save(d / "good.png")
    Image.fromarray(_rgb(1)[:, :, 0]).save(d / "gray.png")
    Image.fromarray(np.dstack([_rgb(2), np.full((H, W), 128, np.uint8)])).save(d / "alpha.png")
    cv2.imwrite(str(d / "sixteen.png"), (_rgb(3).astype(np.uint16) * 257))
    Image.fromarray(_rgb(4)).convert("CMYK").save(d / "cmyk.jpg", quality=95)
    buf = io.BytesIO()
    Image.fromarray(_rgb(5)).save(buf, "JPEG", quality=90)
    (d / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (d / "text.png").write_text("this is not an image\n")
    Image.fromarray(_rgb(6, 1, 1)).save(d / "one.png")
    Image.fromarray(_rgb(7, 40, 48)).save(d / "big.png")
    return d


GOOD = ("alpha", "cmyk", "good", "gray", "sixteen")
BAD = ("big", "one", "text", "truncated")


def _run(args, capsys):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_detect_processes_good_files_and_reports_each_bad_one_in_one_line(ckpt, inputs, tmp_path, capsys):
    code, _, err = _run(["detect", inputs, "-c", ckpt, "--out", tmp_path, "--max-pixels", 1000], capsys)
    assert code == cli.EXIT_INPUTS_FAILED
    skipped = [line for line in err.splitlines() if "skipped" in line]
    assert len(skipped) == len(BAD) and all(any(b in line for line in skipped) for b in BAD)
    for stem in GOOD:
        prob = np.load(tmp_path / f"{stem}.npy")
        assert prob.dtype == np.float32 and prob.shape == (H, W)
        assert (tmp_path / f"{stem}_heatmap.png").is_file() and (tmp_path / f"{stem}_overlay.png").is_file()
    rows = {r["stem"]: r for r in csv.DictReader((tmp_path / "summary.csv").open())}
    assert {s for s, r in rows.items() if r["status"] == "ok"} == set(GOOD)
    assert {s for s, r in rows.items() if r["status"] == "error"} == set(BAD)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_ok"] == len(GOOD) and summary["n_failed"] == len(BAD)
    good = next(r for r in summary["images"] if r["stem"] == "good")
    prob = np.load(tmp_path / "good.npy").astype(np.float64)
    assert good["score_mean"] == pytest.approx(prob.mean(), abs=1e-9)
    assert good["score_max"] == pytest.approx(prob.max()) and good["height"] == H and good["width"] == W


def test_detect_exits_zero_when_all_inputs_are_good_and_roi_crops(ckpt, inputs, tmp_path, capsys):
    code, _, _ = _run(["detect", inputs / "good.png", "-c", ckpt, "-o", tmp_path / "a"], capsys)
    assert code == cli.EXIT_OK
    code, _, _ = _run(["detect", inputs / "good.png", "-c", ckpt, "-o", tmp_path / "b", "--roi", "2,3,10,8"],
                      capsys)
    assert code == cli.EXIT_OK and np.load(tmp_path / "b" / "good.npy").shape == (8, 10)
    code, _, err = _run(["detect", inputs / "good.png", "-c", ckpt, "-o", tmp_path / "c", "--roi", "30,0,8,8"],
                        capsys)
    assert code == cli.EXIT_INPUTS_FAILED and "outside" in err


def test_detect_tiled_flag_gives_the_whole_image_map(ckpt, inputs, tmp_path, capsys):
    _run(["detect", inputs / "good.png", "-c", ckpt, "-o", tmp_path / "w"], capsys)
    _run(["detect", inputs / "good.png", "-c", ckpt, "-o", tmp_path / "t", "--tile", 8], capsys)
    np.testing.assert_allclose(np.load(tmp_path / "t" / "good.npy"), np.load(tmp_path / "w" / "good.npy"),
                               atol=1e-5)
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["images"][0]["tiled"] is True


@pytest.mark.parametrize("args,match", [
    (["detect", "x.png", "--out", "o"], "mantra weights fetch ptrain4 --accept-licence"),
    (["eval", "--pairs", "p.csv", "--out", "o"], "mantra weights fetch ptrain4 --accept-licence"),
    (["detect", "x.png"], "--out"),
    (["detect", "x.png", "--out", "o", "--tile", "0"], "positive integer"),
    (["detect", "/nonexistent/*.png", "--out", "o", "-c", "c"], "no input images"),
    (["eval", "--out", "o"], "one of the arguments"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_are_one_line_with_status_2(args, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MANTRA_WEIGHTS_DIR", str(tmp_path / "empty_cache"))  # the default is not cached
    monkeypatch.delenv("MANTRA_WEIGHTS_REGISTRY", raising=False)
    try:
        code = cli.main(args)
    except SystemExit as e:  # argparse's own errors exit from inside parse_args
        code = e.code
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert match in err and "error" in err.splitlines()[-1] and "Traceback" not in err


def test_corrupt_checkpoint_is_one_line_error(inputs, tmp_path, capsys):
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"nonsense")
    code, _, err = _run(["info", bad], capsys)
    assert code == cli.EXIT_USAGE and len(err.strip().splitlines()) == 1 and "bad.msgpack" in err
    code, _, err = _run(["detect", inputs / "good.png", "-c", bad, "-o", tmp_path / "o"], capsys)
    assert code == cli.EXIT_USAGE and "not a mantra_jax weights file" in err


def test_unexpected_errors_are_reported_without_traceback(monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("kaput")
    monkeypatch.setattr(cli, "cmd_info", boom)
    code, _, err = _run(["info", "x"], capsys)
    assert code == cli.EXIT_INTERNAL and "RuntimeError: kaput" in err


def test_convert_keras_then_info(reference_path, tmp_path, capsys):
    h5 = reference_path("ptrain4like_weights.h5")
    code, _, _ = _run(["convert-keras", h5, tmp_path / "w.msgpack"], capsys)
    assert code == cli.EXIT_OK
    code, out, _ = _run(["info", tmp_path / "w.msgpack", "--json", "--size", 16], capsys)
    info = json.loads(out)
    assert code == cli.EXIT_OK and info["config"]["variant"] == "ptrain4"
    assert info["parameters"]["total"] == 3_805_078 and info["receptive_halo"] == 38
    assert 5e12 < info["flops_per_megapixel"] < 1e13  # ~3.7 M multiply-adds per pixel in the trunk


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Tp/Gt/Au folders, a CSV and a JSON list over the same 2 forged + 1 authentic images."""
    d = tmp_path_factory.mktemp("bench")
    for sub in ("Tp", "Gt", "Au"):
        (d / sub).mkdir()
    rows, items = [], []
    for k in range(2):
        Image.fromarray(_rgb(10 + k)).save(d / "Tp" / f"f{k}.png")
        mask = np.zeros((H, W), np.uint8)
        mask[5:15, 8:20] = 255
        Image.fromarray(mask).save(d / "Gt" / f"f{k}_gt.png")
        rows.append(f"Tp/f{k}.png,Gt/f{k}_gt.png")
        items.append([f"Tp/f{k}.png", f"Gt/f{k}_gt.png"])
    Image.fromarray(_rgb(12)).save(d / "Au" / "a0.png")
    rows.append("Au/a0.png,")
    items.append(["Au/a0.png", "Negative"])
    (d / "pairs.csv").write_text("image,mask\n" + "\n".join(rows) + "\n")
    (d / "list.json").write_text(json.dumps(items))
    return d


def test_eval_writes_metrics_per_image_csv_and_markdown_from_any_listing(ckpt, bench, tmp_path, capsys):
    results = []
    for i, source in enumerate((["--pairs", bench / "pairs.csv"], ["--tp-gt", bench],
                                ["--json", bench / "list.json"])):
        out = tmp_path / f"e{i}"
        code, _, _ = _run(["eval", *source, "-c", ckpt, "--out", out], capsys)
        assert code == cli.EXIT_OK
        doc = json.loads((out / "metrics.json").read_text())
        assert doc["metrics"]["n_images"] == 3 and 0.0 <= doc["metrics"]["pixel_auc"] <= 1.0
        assert doc["run"]["config"] == {**CFG, "windows": [7, 15, 31], "anomaly_feature": "time_z"}
        assert len(list(csv.DictReader((out / "per_image.csv").open()))) == 3
        assert "pixel_auc" in (out / "metrics.md").read_text()
        results.append(doc["metrics"])
    assert results[0] == results[1] == results[2]


def test_eval_skip_mismatched_leaves_out_misfit_masks(ckpt, bench, tmp_path, capsys):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "p.csv").write_text(f"image,mask\n{bench / 'Tp' / 'f0.png'},{tmp_path / 'small.png'}\n"
                                    f"{bench / 'Tp' / 'f1.png'},{bench / 'Gt' / 'f1_gt.png'}\n")
    code, _, _ = _run(["eval", "--pairs", tmp_path / "p.csv", "-c", ckpt, "-o", tmp_path / "o",
                       "--skip-mismatched"], capsys)
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert code == cli.EXIT_OK and doc["run"]["n_skipped"] == 1 and doc["metrics"]["n_images"] == 1


def test_robustness_writes_csv_json_and_plot(ckpt, bench, tmp_path, capsys):
    code, _, _ = _run(["robustness", "--pairs", bench / "pairs.csv", "-c", ckpt, "-o", tmp_path,
                       "--attacks", "gaussian_noise,edge_blur", "--levels", "gaussian_noise=5",
                       "--levels", "edge_blur=3"], capsys)
    assert code == cli.EXIT_OK
    rows = list(csv.DictReader((tmp_path / "robustness.csv").open()))
    assert [(r["attack"], r["level"]) for r in rows] == [("none", ""), ("gaussian_noise", "5"), ("edge_blur", "3")]
    assert Image.open(tmp_path / "robustness.png").format == "PNG"
    code, _, err = _run(["robustness", "--pairs", bench / "pairs.csv", "-c", ckpt, "-o", tmp_path,
                         "--attacks", "jpeg", "--levels", "resize=0.5"], capsys)
    assert code == cli.EXIT_USAGE and "not run" in err


def test_console_script_reports_a_missing_checkpoint_in_one_line(tmp_path):
    env = {**os.environ, "MANTRA_WEIGHTS_DIR": str(tmp_path / "empty_cache")}  # the default is not cached
    env.pop("MANTRA_WEIGHTS_REGISTRY", None)
    proc = subprocess.run([sys.executable, "-m", "mantra_jax.cli", "detect", "x.png", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == cli.EXIT_USAGE
    assert proc.stderr.strip().splitlines() == [f"mantra detect: error: {NO_CHECKPOINT}"]
