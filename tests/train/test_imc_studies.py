"""The Section 3 study runner: the paper's tables as data, the printed layout, and one column trained,
scored (validation, training sample, camera probe) and read back, at a micro size."""

import numpy as np
import pytest

from mantra_jax.train import imc_studies as st


def test_studies_hold_the_papers_tables():
    assert [c.label for c in st.get_study("backbone").columns] == ["IMC-VGG", "IMC-ResNet", "IMC-DnCNN"]
    assert [c.variant for c in st.get_study("first_layer").columns] == [
        "imc-vgg+plain3", "imc-vgg+plain5", "imc-vgg+bayar", "imc-vgg+srm", "imc-vgg+combined"]
    h = st.get_study("hierarchy")
    assert [c.level for c in h.columns] == [c.label for c in h.columns] == ["HL0", "HL1", "HL2", "HL3", "HL4", "HL5"]
    assert h.rows[1][1] == "IMC-25 Valid. Acc. (28 here)"
    assert h.columns[5].paper["val/HL0/top1"] == 96.2 and "val/HL1/top1" not in h.columns[0].paper
    assert st.get_study("width_depth").columns[3].paper["val/HL5/top10"] == 93.1
    with pytest.raises(ValueError, match="unknown study"):
        st.get_study("table9")


def test_architecture_rows_of_the_full_size_columns():
    t2 = {c.label: st.architecture(c) for c in st.get_study("backbone").columns}
    assert {k: (v["convs"], v["params"]) for k, v in t2.items()} == {
        "IMC-VGG": (11, 486_103), "IMC-ResNet": (14, 462_951), "IMC-DnCNN": (12, 515_007)}
    t5 = [st.architecture(c)["receptive_field"] for c in st.get_study("width_depth").columns]
    assert t5 == [25, 25, 31, 31]  # the tables' 23 / 29 plus 2 for the 5x5 combined first layer


def test_table_prints_ours_beside_the_papers():
    study = st.get_study("backbone")
    table = st.format_study(study, {"IMC-VGG": {"convs": 11, "params": 486_103, "val/HL0/top1": 0.25}})
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["Table", "2", "(backbone)"]
    row = next(x for x in lines if x.startswith("IMC-7 Valid Acc."))
    assert "25.0 / 92.1" in row and "- / 90.8" in row
    assert "486K / 487K" in next(x for x in lines if x.startswith("#Param."))


def _cameras(root):
    import cv2

    from mantra_jax.eval.camera_probe import camera_folders

    rng = np.random.default_rng(0)
    for cam in ("a", "b"):
        (root / cam).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(root / cam / f"{i}.png"), rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    return camera_folders(root)


@pytest.mark.slow
def test_one_column_trains_scores_and_reads_back(tmp_path):
    from experiments.configs.blocks import data_block

    data = data_block(patch_size=32, crop_size=16, val_records=2).to_dict()
    budget = st.Budget(steps=2, batch_size=2, learning_rate=1e-3, log_every_steps=1, progress=False)
    kwargs = dict(workdir=tmp_path / "run", budget=budget, width_divisor=8, data=data, train_records=2,
                  cameras=_cameras(tmp_path / "cams"), probe_crop=16, only=["IMC-ResNet"])
    study = st.get_study("backbone")
    results = st.run_study(study, **kwargs)
    r = results["IMC-ResNet"]
    assert (r["variant"], r["level"], r["steps"], r["convs"]) == ("imc-resnet/8", "HL0", 2, 14)
    for key in ("val/HL0/top1", "train/HL0/top1", "kcmi"):
        assert 0.0 <= r[key] <= 1.0
    assert r["kcmi_detail"]["test"] == 2
    assert st.run_study(study, **kwargs) == results  # a finished column is read back, not retrained
    assert f"{100 * r['val/HL0/top1']:.1f} / 90.8" in st.format_study(study, results)
