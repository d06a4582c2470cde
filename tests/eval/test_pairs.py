"""Pair listings (CSV, Tp/Gt folders, IMDL-BenCo JSON); mask reading is tested in tests/io/test_masks.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mantra_jax.eval import pairs as P


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _rgb(path: Path, h: int = 4, w: int = 5) -> Path:
    return _png(path, np.full((h, w, 3), 90, np.uint8))


def test_csv_image_mask_resolves_relative_paths_and_empty_masks(tmp_path):
    _rgb(tmp_path / "img" / "a.png")
    _rgb(tmp_path / "img" / "b.png")
    _png(tmp_path / "gt" / "a.png", np.zeros((4, 5), np.uint8))
    (tmp_path / "list.csv").write_text("image,mask,extra\nimg/a.png,gt/a.png,1\nimg/b.png,,2\n")
    got = P.read_pairs_csv(tmp_path / "list.csv")
    assert got == [P.Pair(tmp_path / "img/a.png", tmp_path / "gt/a.png"),
                   P.Pair(tmp_path / "img/b.png", None)]
    assert got[1].authentic and not got[0].authentic


def test_csv_coverage_columns_give_tampered_and_original_pairs(tmp_path):
    for rel in ("tampered/1t.png", "original/1.png"):
        _rgb(tmp_path / rel)
    _png(tmp_path / "mask/1forged.png", np.zeros((4, 5), np.uint8))
    (tmp_path / "pairs.csv").write_text(
        "id,tampered,original,mask,width,height,mask_size_matches\n1,tampered/1t.png,original/1.png,"
        "mask/1forged.png,5,4,1\n")
    assert P.read_pairs_csv(tmp_path / "pairs.csv") == [
        P.Pair(tmp_path / "tampered/1t.png", tmp_path / "mask/1forged.png"),
        P.Pair(tmp_path / "original/1.png", None)]


def test_csv_errors_are_clear(tmp_path):
    (tmp_path / "bad.csv").write_text("img,gt\na.png,b.png\n")
    with pytest.raises(P.PairsError, match="columns 'image,mask'"):
        P.read_pairs_csv(tmp_path / "bad.csv")
    (tmp_path / "missing.csv").write_text("image,mask\nnope.png,\n")
    with pytest.raises(P.PairsError, match="do not exist"):
        P.read_pairs_csv(tmp_path / "missing.csv")
    (tmp_path / "dup.csv").write_text("image,mask\na.png,\na.png,\n")
    with pytest.raises(P.PairsError, match="twice"):
        P.read_pairs_csv(tmp_path / "dup.csv", check_exists=False)
    with pytest.raises(P.PairsError, match="does not exist"):
        P.read_pairs_csv(tmp_path / "absent.csv")


def test_folders_pair_by_stem_with_mask_suffixes(tmp_path):
    for name in ("x1.jpg", "X2.tif", "x3.png"):
        _rgb(tmp_path / "Tp" / name)
    for name in ("x1_gt.png", "x2_mask.png", "x3.png"):
        _png(tmp_path / "Gt" / name, np.zeros((4, 5), np.uint8))
    _rgb(tmp_path / "Au" / "a.jpg")
    got = P.pairs_from_folders(tmp_path)
    assert [(p.image.name, p.mask.name if p.mask else None) for p in got] == [
        ("X2.tif", "x2_mask.png"), ("x1.jpg", "x1_gt.png"), ("x3.png", "x3.png"), ("a.jpg", None)]


def test_folders_report_missing_and_ambiguous_masks(tmp_path):
    _rgb(tmp_path / "Tp" / "x1.png")
    _rgb(tmp_path / "Tp" / "x2.png")
    _png(tmp_path / "Gt" / "x1_gt.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(P.PairsError, match="no mask"):
        P.pairs_from_folders(tmp_path)
    assert [p.image.name for p in P.pairs_from_folders(tmp_path, missing_mask="skip")] == ["x1.png"]
    _png(tmp_path / "Gt" / "x1_mask.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(P.PairsError, match="both match"):
        P.pairs_from_folders(tmp_path, missing_mask="skip")
    with pytest.raises(P.PairsError, match="Tp/ and Gt/"):
        P.pairs_from_folders(tmp_path / "Tp")


def test_json_negative_means_authentic(tmp_path):
    _rgb(tmp_path / "t.png")
    _rgb(tmp_path / "a.png")
    _png(tmp_path / "m.png", np.zeros((4, 5), np.uint8))
    (tmp_path / "list.json").write_text(json.dumps([["t.png", "m.png"], ["a.png", "Negative"]]))
    assert P.read_pairs_json(tmp_path / "list.json") == [P.Pair(tmp_path / "t.png", tmp_path / "m.png"),
                                                     P.Pair(tmp_path / "a.png", None)]
    (tmp_path / "bad.json").write_text(json.dumps([["t.png"]]))
    with pytest.raises(P.PairsError, match="entry 0"):
        P.read_pairs_json(tmp_path / "bad.json")


def test_image_size_reads_the_header(tmp_path):
    assert P.image_size(_rgb(tmp_path / "x.png", 6, 11)) == (6, 11)


def test_real_coverage_pairs_csv(shared_data):
    got = P.read_pairs_csv(shared_data("coverage/pairs.csv"))
    assert len(got) == 200 and sum(p.authentic for p in got) == 100
    assert got[0].image.name == "1t.png" and got[0].mask.name == "1forged.png"
