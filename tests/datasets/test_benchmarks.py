"""Benchmark layouts (synthetic, tiny) and tfds preparation without TensorFlow (real COVERAGE subset)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import import_or_absent
from PIL import Image

import_or_absent("tensorflow_datasets")

from mantra_jax.datasets import benchmarks as B  # noqa: E402
from mantra_jax.eval.pairs import PairsError, image_size  # noqa: E402

H, W = 12, 16


def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _image(path: Path, value: int = 100, shape=(H, W)) -> Path:
    return _save(path, np.full((*shape, 3), value, np.uint8))


def _mask(path: Path, forged_value: int = 255, shape=(H, W)) -> Path:
    m = np.full(shape, 255 - forged_value, np.uint8)
    m[: shape[0] // 2, : shape[1] // 2] = forged_value
    return _save(path, m)


EXPECTED_MASK = np.zeros((H, W), bool)
EXPECTED_MASK[: H // 2, : W // 2] = True


def _examples(name: str, root: Path) -> dict[str, dict]:
    return {e["image_path"]: e for e in (B.make_example(i, root) for i in B.benchmark_items(name, root))}


def test_coverage_release_layout_with_tiffs(tmp_path):
    root = tmp_path / "COVERAGE"
    for i in (1, 2, 10):
        _image(root / "image" / f"{i}t.tif")
        _image(root / "image" / f"{i}.tif")
        _mask(root / "mask" / f"{i}forged.tif", shape=(H, W + 2) if i == 2 else (H, W))
        _mask(root / "mask" / f"{i}copy.tif")
    ex = _examples("coverage", tmp_path)
    assert list(ex) == ["COVERAGE/image/1t.tif", "COVERAGE/image/1.tif", "COVERAGE/image/2t.tif",
                        "COVERAGE/image/2.tif", "COVERAGE/image/10t.tif", "COVERAGE/image/10.tif"]
    t1 = ex["COVERAGE/image/1t.tif"]
    np.testing.assert_array_equal(t1["mask"], EXPECTED_MASK)
    assert t1["forged"] and t1["mask_size_matches"] and t1["category"] == "copy-move"
    assert t1["image"].shape == (H, W, 3) and t1["image"].dtype == np.uint8
    assert not ex["COVERAGE/image/2t.tif"]["mask_size_matches"]
    assert ex["COVERAGE/image/2t.tif"]["mask"].shape == (H, W)
    o1 = ex["COVERAGE/image/1.tif"]
    assert not o1["forged"] and not o1["mask"].any()
    assert o1["mask_path"] == "" and o1["category"] == "authentic"


def test_coverage_missing_layout_is_a_clear_error(tmp_path):
    with pytest.raises(PairsError, match="mask/"):
        B.coverage_items(tmp_path)


def test_casia_v1_layout_pairs_gt_masks_and_categories(tmp_path):
    ds, gt = tmp_path / "CASIA 1.0 dataset", tmp_path / "CASIA 1.0 groundtruth"
    _image(ds / "Au" / "Au_ani_0001.jpg")
    cm, sp = "Sp_S_CND_A_pla0016_pla0016_0196", "Sp_D_CND_A_pla0005_pla0023_0281"
    _image(ds / "Modified Tp" / "Tp" / "CM" / f"{cm}.jpg")
    _image(ds / "Modified Tp" / "Tp" / "Sp" / f"{sp}.jpg")
    _image(ds / "Modified Tp" / "Tp" / "Sp" / "Sp_D_CNN_A_art0024_ani0032_0268.jpg")  # no mask: left out
    _mask(gt / "CM" / f"{cm}_gt.png")
    _mask(gt / "Sp" / f"{sp}_gt.png")
    _image(gt / "Samples" / f"{sp}_combine.png")
    ex = _examples("casia_v1", tmp_path)
    by_cat = {e["category"]: e for e in ex.values()}
    assert sorted(by_cat) == ["authentic", "copy-move", "splice"] and len(ex) == 3
    np.testing.assert_array_equal(by_cat["splice"]["mask"], EXPECTED_MASK)
    assert by_cat["copy-move"]["mask_path"] == f"CASIA 1.0 groundtruth/CM/{cm}_gt.png"


def test_casia_duplicate_copies_are_rejected(tmp_path):
    name = "Sp_S_CND_A_pla0016_pla0016_0196"
    _image(tmp_path / "Tp" / "CM" / f"{name}.jpg")
    _image(tmp_path / "Modified Tp" / "CM" / f"{name}.jpg")
    _mask(tmp_path / "groundtruth" / f"{name}_gt.png")
    with pytest.raises(PairsError, match="single copy"):
        B.casia_items(tmp_path)


def test_columbia_green_region_is_forged(tmp_path):
    root = tmp_path / "columbia"
    _image(root / "4cam_auth" / "canong3_02_sub_01.tif")
    _image(root / "4cam_splc" / "canong3_canonxt_sub_01.tif")
    colour = np.zeros((H, W, 3), np.uint8)
    colour[...] = (200, 20, 10)  # red: first camera
    colour[: H // 2, : W // 2] = (30, 230, 25)  # green: spliced-in region
    colour[H // 2, :] = (120, 0, 0)  # darker boundary band on the red side
    _save(root / "4cam_splc" / "edgemask" / "canong3_canonxt_sub_01_edgemask.jpg", colour)
    ex = _examples("columbia", tmp_path)
    spliced = ex["columbia/4cam_splc/canong3_canonxt_sub_01.tif"]
    np.testing.assert_array_equal(spliced["mask"], EXPECTED_MASK)
    assert spliced["category"] == "splice" and not ex["columbia/4cam_auth/canong3_02_sub_01.tif"]["forged"]


def test_nist16_reference_csv_and_black_masks(tmp_path):
    root = tmp_path / "NC2016_Test0613"
    _image(root / "probe" / "NC2016_0001.jpg")
    _image(root / "probe" / "NC2016_0002.jpg")
    _mask(root / "reference" / "manipulation" / "mask" / "NC2016_0001.png", forged_value=0)
    (root / "reference" / "manipulation" / "NC2016-manipulation-ref.csv").write_text(
        "TaskID|ProbeFileID|ProbeFileName|ProbeMaskFileName|IsTarget|IsManipulationTypeRemoval|"
        "IsManipulationTypeSplice|IsManipulationTypeCopyClone\n"
        "manipulation|NC2016_0001|probe/NC2016_0001.jpg|reference/manipulation/mask/NC2016_0001.png|Y|N|Y|N\n"
        "manipulation|NC2016_0002|probe/NC2016_0002.jpg||N|||\n")
    ex = _examples("nist16", tmp_path)
    forged = ex["NC2016_Test0613/probe/NC2016_0001.jpg"]
    np.testing.assert_array_equal(forged["mask"], EXPECTED_MASK)
    assert forged["category"] == "splice"
    assert not ex["NC2016_Test0613/probe/NC2016_0002.jpg"]["forged"]


def test_nist16_bad_reference_is_a_clear_error(tmp_path):
    ref = tmp_path / "reference" / "manipulation" / "NC2016-manipulation-ref.csv"
    ref.parent.mkdir(parents=True)
    ref.write_text("ProbeFileName|IsTarget\nprobe/x.jpg|Y\n")
    with pytest.raises(PairsError, match="ProbeMaskFileName"):
        B.nist16_items(tmp_path)


def test_prepare_and_read_without_tensorflow(tmp_path):
    for i in (1, 2):
        _image(tmp_path / "manual" / "tampered" / f"{i}t.png", value=10 * i)
        _image(tmp_path / "manual" / "original" / f"{i}.png")
        _mask(tmp_path / "manual" / "mask" / f"{i}forged.png")
    builder = B.prepare("coverage", manual_dir=tmp_path / "manual", data_dir=tmp_path / "data")
    source = builder.as_data_source(split="test")
    assert len(source) == 4
    got = {source[i]["image_path"].decode(): source[i] for i in range(len(source))}
    t2 = got["tampered/2t.png"]
    assert t2["image"].dtype == np.uint8 and (t2["image"] == 20).all()
    np.testing.assert_array_equal(t2["mask"], EXPECTED_MASK)
    assert bool(t2["forged"]) and bool(t2["mask_size_matches"]) and t2["category"] == b"copy-move"
    import tensorflow_datasets as tfds  # re-open from files only, as another process would
    again = tfds.builder_from_directory(str(builder.data_path)).as_data_source(split="test")
    assert len(again) == 4
    stored = B.prepared_pairs("coverage", tmp_path / "data")  # already prepared: no manual folder needed
    assert [(p.image, p.mask) for p in stored] == [("tampered/1t.png", "mask/1forged.png"), ("original/1.png", None),
                                                   ("tampered/2t.png", "mask/2forged.png"), ("original/2.png", None)]
    loaded = stored[2].load(rule="bright", on_mismatch="resize", max_pixels=H * W, max_bytes=1)
    assert (loaded.image == 20).all() and loaded.size_matches
    np.testing.assert_array_equal(loaded.mask, EXPECTED_MASK)
    with pytest.raises(PairsError, match="over the limit"):
        stored[2].load(rule="bright", on_mismatch="resize", max_pixels=H * W - 1, max_bytes=1)


def test_prepare_real_coverage_subset(shared_data, tmp_path):
    root = shared_data("coverage")
    builder = B.prepare("coverage", manual_dir=root, data_dir=tmp_path, max_examples=2)
    assert Path(builder.data_path).is_relative_to(tmp_path / "subset_2")
    source = builder.as_data_source(split="test")
    assert len(source) == 2
    ex = {source[i]["image_path"].decode(): source[i] for i in range(2)}
    assert set(ex) == {"tampered/1t.png", "original/1.png"}
    t1 = ex["tampered/1t.png"]
    assert t1["image"].shape == (421, 424, 3) and t1["mask"].shape == (421, 424) and t1["mask"].any()


def test_real_coverage_missized_masks_are_the_known_nine(shared_data):
    root = shared_data("coverage")
    items = B.coverage_items(root)
    assert len(items) == 200
    missized = {int(i.image.stem[:-1]) for i in items
                if i.mask is not None and image_size(i.image) != image_size(i.mask)}
    assert missized == B.COVERAGE_MISSIZED_MASK_IDS
    item41 = next(i for i in items if i.image.stem == "41t")
    ex = B.make_example(item41, root)
    assert not ex["mask_size_matches"] and ex["mask"].shape == ex["image"].shape[:2]
    assert B.make_example(item41, root, on_mismatch="skip") is None


def test_real_coverage_builder_pairs_equal_the_folder_pairing(shared_data):
    from mantra_jax.eval.pairs import read_pairs_csv

    root = shared_data("coverage")
    items = B.benchmark_items("coverage", root)
    assert [(i.image, i.mask) for i in items] == [(p.image, p.mask) for p in read_pairs_csv(root / "pairs.csv")]


def test_unknown_benchmark_name():
    with pytest.raises(ValueError, match="unknown benchmark"):
        B.benchmark_items("casia", ".")
