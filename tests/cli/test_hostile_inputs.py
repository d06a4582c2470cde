"""Issue 13: hostile inputs and interrupted runs, through ``mantra``'s main() in-process.

Every case is one test that failed before the fix: one clear line and the exit status of ``cli``'s
docstring, nothing lost, nothing of the user's overwritten. Images are 8 x 8 (the smallest side read), so
the tiny model compiles once per shape for the whole module.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import signal
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from mantra_jax import cli
from mantra_jax.io.msgpack_weights import save_weights_file
from mantra_jax.models.config import model_from_config
from tests.infer.conftest import init

S = 8  # side of every test image: the smallest accepted (mantra_jax.io.images.DEFAULT_MIN_SIZE)
CFG = {"kind": "mantranet", "variant": "tiny"}


def _variables(broken=False):
    v = init(model_from_config(CFG), 3)
    if broken:  # finite but wrong: a negative moving variance makes the LADN's normalisation NaN
        import jax

        v = jax.tree_util.tree_map_with_path(
            lambda p, a: -a if "moving_variance" in jax.tree_util.keystr(p) else a, v)
    return v


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.msgpack"
    save_weights_file(path, CFG, _variables())
    return path


@pytest.fixture(scope="module")
def broken_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "broken.msgpack"
    save_weights_file(path, CFG, _variables(broken=True))
    return path


def _png(path, seed=0, side=S):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def _mask(path, value=255, side=S):
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros((side, side), np.uint8)
    m[: side // 2] = value
    Image.fromarray(m).save(path)
    return path


def _bomb_png(path, side=60000):
    """A ~70-byte PNG whose header declares side x side pixels (3.6 GP for 60000)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def _run(capsys, *args):
    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def _pairs_csv(path, rows):
    path.write_text("image,mask\n" + "".join(f"{i},{'' if m is None else m}\n" for i, m in rows))
    return path


# ---- 1, 2, 3: refused before decoding or reading ------------------------------------------------------

def test_bomb_header_in_a_folder_is_one_skipped_line_and_the_rest_is_processed(ckpt, tmp_path, capsys):
    _png(tmp_path / "in" / "a.png")
    _bomb_png(tmp_path / "in" / "bomb.png")
    _png(tmp_path / "in" / "c.png", 1)
    code, err = _run(capsys, "detect", tmp_path / "in", "-c", ckpt, "-o", tmp_path / "out")
    assert code == cli.EXIT_INPUTS_FAILED
    assert [line for line in err.splitlines() if "bomb.png" in line] == [
        f"mantra detect: skipped {tmp_path / 'in' / 'bomb.png'}: 60000x60000 image has 3600000000 pixels, over "
        "the limit of 134217728"]
    s = _summary(tmp_path / "out")
    assert s["complete"] and s["n_ok"] == 2 and s["n_failed"] == 1
    assert (tmp_path / "out" / "c_heatmap.png").is_file()


def test_bomb_header_as_image_or_mask_fails_only_that_pair_in_eval(ckpt, tmp_path, capsys):
    rows = [(_bomb_png(tmp_path / "bomb.png"), None), (_png(tmp_path / "x.png"), _bomb_png(tmp_path / "bm.png")),
            (_png(tmp_path / "y.png", 2), _mask(tmp_path / "y_gt.png"))]
    code, err = _run(capsys, "eval", "--pairs", _pairs_csv(tmp_path / "p.csv", rows), "-c", ckpt,
                     "-o", tmp_path / "out")
    assert code == cli.EXIT_INPUTS_FAILED
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert doc["metrics"]["n_images"] == 1 and doc["run"]["n_failed"] == 2
    reasons = " ".join(f["reason"] for f in doc["run"]["failed"])
    assert "over the limit" in reasons and "mask" in reasons and "DecompressionBomb" not in err


def test_image_above_pillows_bomb_limit_is_refused_from_its_header_without_decoding(ckpt, tmp_path, capsys,
                                                                                     monkeypatch):
    # Pillow's bomb limit lowered so a 16 x 16 file stands for a 20000 x 20000 one: before, such files went
    # to OpenCV, which decoded all pixels before the limit was checked.
    _png(tmp_path / "big.png", side=16)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append("cv2") or None)
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append("pil") or real_load(self))
    code, err = _run(capsys, "detect", tmp_path / "big.png", "-c", ckpt, "-o", tmp_path / "out",
                     "--max-pixels", 200)
    assert code == cli.EXIT_INPUTS_FAILED and "16x16 image has 256 pixels, over the limit of 200" in err
    assert decoded == [] and Image.MAX_IMAGE_PIXELS == 100


def test_device_and_oversized_files_are_refused_before_reading(ckpt, tmp_path, capsys, monkeypatch):
    import pathlib

    big = _png(tmp_path / "big.png")
    real = pathlib.Path.read_bytes

    def read_bytes(self):  # the old reader read the whole file first: /dev/zero never ended
        if str(self) in ("/dev/zero", str(big)):
            raise AssertionError(f"{self} read before it was checked")
        return real(self)
    monkeypatch.setattr(pathlib.Path, "read_bytes", read_bytes)
    code, err = _run(capsys, "detect", "/dev/zero", big, "-c", ckpt, "-o", tmp_path / "out",
                     "--max-bytes", big.stat().st_size - 1)
    assert code == cli.EXIT_INPUTS_FAILED
    assert "mantra detect: skipped /dev/zero: not a regular file" in err
    assert f"{big}: {big.stat().st_size} bytes, over the limit of {big.stat().st_size - 1} bytes" in err


# ---- 4: non-finite maps -------------------------------------------------------------------------------

def test_a_nan_map_is_an_error_for_the_image_in_detect_and_eval(broken_ckpt, tmp_path, capsys):
    img = _png(tmp_path / "a.png")
    code, err = _run(capsys, "detect", img, "-c", broken_ckpt, "-o", tmp_path / "d")
    assert code == cli.EXIT_INPUTS_FAILED and "non-finite value(s)" in err
    assert _summary(tmp_path / "d")["images"][0]["status"] == "error"
    assert not list((tmp_path / "d").glob("a*"))  # no heat map, no .npy
    code, err = _run(capsys, "eval", "--pairs", _pairs_csv(tmp_path / "p.csv", [(img, _mask(tmp_path / "m.png"))]),
                     "-c", broken_ckpt, "-o", tmp_path / "e")
    assert code == cli.EXIT_INPUTS_FAILED and "non-finite value(s)" in err


# ---- 5: output locations checked before the first image -----------------------------------------------

@pytest.mark.parametrize("where", ["file", "under_a_file", "in_use"])
def test_unusable_out_is_refused_before_loading_or_predicting(ckpt, tmp_path, capsys, monkeypatch, where):
    import mantra_jax.infer.tiled as tiled

    calls = []
    monkeypatch.setattr(tiled, "predict_auto", lambda *a, **k: calls.append(1))
    (tmp_path / "f").write_text("user's\n")
    if where == "in_use":
        from mantra_jax.io.outputs import OutputDir
    out = {"file": tmp_path / "f", "under_a_file": tmp_path / "f" / "sub", "in_use": tmp_path / "busy"}[where]
    rows = [(_png(tmp_path / "a.png"), _mask(tmp_path / "m.png"))]
    import contextlib

    held = OutputDir.open(tmp_path / "busy", "test") if where == "in_use" else contextlib.nullcontext()
    with held:  # another run holding its folder
        for args in (["eval", "--pairs", _pairs_csv(tmp_path / "p.csv", rows)], ["detect", tmp_path / "a.png"],
                     ["robustness", "--pairs", tmp_path / "p.csv", "--attacks", "jpeg"]):
            code, err = _run(capsys, *args, "-c", ckpt, "-o", out)
            assert code == cli.EXIT_USAGE and calls == []
            assert len(err.strip().splitlines()) == 1 and str(out) in err
            assert ("in use" if where == "in_use" else "folder" if where == "file" else "cannot be written") in err
    assert (tmp_path / "f").read_text() == "user's\n"


def test_read_only_out_is_refused_before_predicting(ckpt, tmp_path, capsys):
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
    else:  # root writes into a 0o555 folder (CI runs as root); sysfs refuses even root a new folder
        if not os.path.isdir("/sys/kernel"):
            pytest.skip("running as root without a sysfs to refuse the write")
        ro = pathlib.Path("/sys/mantra-read-only-test")
    code, err = _run(capsys, "detect", _png(tmp_path / "a.png"), "-c", ckpt, "-o", ro)
    assert code == cli.EXIT_USAGE and "cannot be written" in err and len(err.strip().splitlines()) == 1


# ---- 6: never overwrite, never read our own outputs ---------------------------------------------------

def test_detect_into_its_input_folder_never_overwrites_a_users_file(ckpt, tmp_path, capsys):
    d = tmp_path / "photos"
    _png(d / "x.png")
    _png(d / "x_heatmap.png", 5)  # the user's own file, named like an output
    before = (d / "x_heatmap.png").read_bytes()
    code, err = _run(capsys, "detect", d, "-c", ckpt, "-o", d)
    assert code == cli.EXIT_USAGE and "x_heatmap.png" in err and "never overwritten" in err
    assert (d / "x_heatmap.png").read_bytes() == before
    assert sorted(p.name for p in d.iterdir()) == ["x.png", "x_heatmap.png"]  # nothing written, no manifest


def test_detect_reruns_into_its_input_folder_read_only_the_users_images(ckpt, tmp_path, capsys):
    d = tmp_path / "photos"
    _png(d / "a.png")
    _png(d / "b.png", 1)
    for _ in range(2):
        code, err = _run(capsys, "detect", d, "-c", ckpt, "-o", d)
        assert code == cli.EXIT_OK
        assert [r["stem"] for r in _summary(d)["images"]] == ["a", "b"]
    assert not list(d.glob("*_heatmap_*")) and not list(d.glob("*_overlay_*"))
    assert "left out 4 file(s) that mantra wrote" in err  # heat map and overlay of each image
    assert (d / ".mantra_outputs.jsonl").is_file()  # mantra_jax.io.outputs.MANIFEST


# ---- 7: interrupted runs ------------------------------------------------------------------------------

def _interrupt_on_call(monkeypatch, n, how="raise"):
    """predict_auto that interrupts (KeyboardInterrupt, or a real SIGTERM to this process) at call n."""
    import mantra_jax.infer.tiled as tiled

    real, calls = tiled.predict_auto, []

    def predict(*a, **k):
        calls.append(1)
        if len(calls) == n:
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(tiled, "predict_auto", predict)
    return calls


def test_interrupted_detect_writes_a_summary_of_what_was_done(ckpt, tmp_path, capsys, monkeypatch):
    for k in range(3):
        _png(tmp_path / "in" / f"i{k}.png", k)
    _interrupt_on_call(monkeypatch, 2, how="sigterm")

    class Killed(BaseException):
        pass

    def killed(signum, frame):  # what SIGTERM did before main() handled it (here without ending pytest)
        raise Killed
    previous = signal.signal(signal.SIGTERM, killed)
    try:
        code, err = _run(capsys, "detect", tmp_path / "in", "-c", ckpt, "-o", tmp_path / "out")
        assert signal.getsignal(signal.SIGTERM) is killed  # main() restored the handler it found
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == cli.EXIT_INTERRUPTED and "interrupted after 1 of 3" in err
    s = _summary(tmp_path / "out")
    assert not s["complete"] and [r["stem"] for r in s["images"]] == ["i0"]
    assert [os.path.basename(p) for p in s["not_processed"]] == ["i1.png", "i2.png"]
    assert (tmp_path / "out" / "i0.npy").is_file() and not (tmp_path / "out" / "i1.npy").exists()


def test_interrupted_eval_keeps_finished_images_and_resumes_without_redoing_them(ckpt, tmp_path, capsys,
                                                                                 monkeypatch):
    rows = [(_png(tmp_path / f"t{k}.png", 10 + k), _mask(tmp_path / f"t{k}_gt.png")) for k in range(3)]
    rows.append((_png(tmp_path / "au.png", 20), None))
    pairs = _pairs_csv(tmp_path / "p.csv", rows)
    base = ["eval", "--pairs", pairs, "-c", ckpt]
    assert _run(capsys, *base, "-o", tmp_path / "whole")[0] == cli.EXIT_OK
    calls = _interrupt_on_call(monkeypatch, 3)
    code, err = _run(capsys, *base, "-o", tmp_path / "r")
    assert code == cli.EXIT_INTERRUPTED and "interrupted after 2 of 4" in err and "resume" in err
    partial = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert partial["run"]["complete"] is False and partial["metrics"]["n_images"] == 2
    assert len(list(csv.DictReader((tmp_path / "r" / "per_image.csv").open()))) == 2
    calls.clear()
    code, err = _run(capsys, *base, "-o", tmp_path / "r")
    assert code == cli.EXIT_OK and len(calls) == 2 and "2 of 4 image(s) already done" in err
    resumed, whole = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("r", "whole"))
    assert resumed["metrics"] == whole["metrics"] and resumed["run"]["complete"] is True
    code, err = _run(capsys, "eval", "--pairs", pairs, "-c", ckpt, "-o", tmp_path / "r", "--mask-rule", "dark")
    assert code == cli.EXIT_USAGE and "other settings (mask_rule differ)" in err


# ---- the smaller ones ---------------------------------------------------------------------------------

def test_resized_masks_are_reported_once_with_a_count(ckpt, tmp_path, capsys):
    rows = [(_png(tmp_path / f"t{k}.png", k), _mask(tmp_path / f"m{k}.png", side=16)) for k in range(2)]
    code, err = _run(capsys, "eval", "--pairs", _pairs_csv(tmp_path / "p.csv", rows), "-c", ckpt,
                     "-o", tmp_path / "o")
    assert code == cli.EXIT_OK
    assert [line for line in err.splitlines() if "were resized" in line] == [
        "mantra eval: 2 mask(s) had another size than their image and were resized (nearest neighbour); "
        "--skip-mismatched leaves such images out"]


def test_negated_count_agrees_between_per_image_csv_and_metrics_json(ckpt, tmp_path, capsys):
    white = tmp_path / "white.png"
    Image.fromarray(np.full((S, S), 255, np.uint8)).save(white)
    most = tmp_path / "most.png"
    m = np.full((S, S), 255, np.uint8)
    m[0, :3] = 0
    Image.fromarray(m).save(most)
    rows = [(_png(tmp_path / "a.png"), white), (_png(tmp_path / "b.png", 1), most)]
    assert _run(capsys, "eval", "--pairs", _pairs_csv(tmp_path / "p.csv", rows), "-c", ckpt,
                "-o", tmp_path / "o")[0] == cli.EXIT_OK
    negated = [r["negated"] for r in csv.DictReader((tmp_path / "o" / "per_image.csv").open())]
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert negated == ["False", "True"]
    assert "; 1 image(s) negated" in doc["conventions"]["pixel_auc_paper"]


def test_roi_smaller_than_the_minimum_side_is_a_usage_error(ckpt, tmp_path, capsys):
    code, err = _run(capsys, "detect", _png(tmp_path / "a.png"), "-c", ckpt, "-o", tmp_path / "o",
                     "--roi", "0,0,1,1")
    assert code == cli.EXIT_USAGE and "w, h >= 8" in err and not (tmp_path / "o").exists()


def test_outputs_follow_the_umask(ckpt, tmp_path, capsys):
    from mantra_jax.io.keras_h5 import save_keras_h5

    old = os.umask(0o027)
    try:
        assert _run(capsys, "detect", _png(tmp_path / "a.png"), "-c", ckpt, "-o", tmp_path / "o")[0] == cli.EXIT_OK
        save_keras_h5(tmp_path / "w.h5", {"Featex/b1c1/kernel": np.zeros((3, 3, 3, 4), np.float32)})
    finally:
        os.umask(old)
    for p in [*(tmp_path / "o").glob("a*"), tmp_path / "o" / "summary.json", tmp_path / "w.h5"]:
        assert p.stat().st_mode & 0o777 == 0o640, p


def test_detect_folders_and_eval_tp_gt_list_the_same_image_files(tmp_path):
    from mantra_jax.eval.pairs import pairs_from_folders
    from mantra_jax.infer.detect import collect_inputs

    for name in ("a.png", "b.ppm", "c.jp2", "d.tif", "e.pgm"):
        _png(tmp_path / "Tp" / name.replace(name.split(".")[1], "png")).rename(tmp_path / "Tp" / name)
        _mask(tmp_path / "Gt" / f"{name.split('.')[0]}_gt.png")
    (tmp_path / "Tp" / "notes.txt").write_text("not an image")
    detect_sees = collect_inputs([str(tmp_path / "Tp")])[0]
    eval_sees = [p.image for p in pairs_from_folders(tmp_path)]
    assert detect_sees == eval_sees and len(eval_sees) == 5


def test_a_device_as_checkpoint_is_refused_before_reading(tmp_path, capsys):
    code, err = _run(capsys, "detect", _png(tmp_path / "a.png"), "-c", "/dev/zero", "-o", tmp_path / "o")
    assert code == cli.EXIT_USAGE and "not a regular file or a folder" in err and not (tmp_path / "o").exists()


def test_convert_keras_never_overwrites_an_existing_file(tmp_path, capsys):
    from mantra_jax.io.keras_h5 import save_keras_h5

    save_keras_h5(tmp_path / "w.h5", {"Featex/b1c1/kernel": np.zeros((3, 3, 3, 4), np.float32)})
    (tmp_path / "mine.msgpack").write_text("the user's\n")
    code, err = _run(capsys, "convert-keras", tmp_path / "w.h5", tmp_path / "mine.msgpack")
    assert code == cli.EXIT_USAGE and "never overwrites" in err
    assert (tmp_path / "mine.msgpack").read_text() == "the user's\n"
