"""The Section 3 study runner: the paper's tables as data, the printed layout, and one column trained,
scored (validation, training sample, camera probe) and read back, at a micro size."""

import pathlib

import numpy as np
import pytest

from experiments import studies as st


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


def test_presets_train_every_column_as_the_budgets_did():
    from experiments.configs.imc_studies import get_config
    from mantra_jax.train.loop import LoopConfig

    for preset, want in (("paper", (100_000, 1000, 1000, 50, 64, 1e-4, 0.0)), ("cpu", (60, 60, 60, 20, 8, 1e-3, 1.0))):
        t = get_config(preset).train
        loop = LoopConfig.from_config(t, progress=False)
        assert (loop.num_steps, loop.eval_every_steps, loop.checkpoint_every_steps, loop.log_every_steps,
                t.batch_size, t.learning_rate, t.hierarchy_weight) == want, preset
        assert (loop.seed, loop.patience, loop.factor) == (0, 20, 0.5)


def _cameras(root):
    import cv2

    from mantra_jax.eval.camera_probe import camera_folders

    rng = np.random.default_rng(0)
    for cam in ("a", "b"):
        (root / cam).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(root / cam / f"{i}.png"), rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    return camera_folders(root)


def _scores_by_hand(model, variables, records) -> dict[str, float]:
    """Top-k hits and the HL0 cross-entropy of ``records`` (dicts of uint8 images and leaf labels) in numpy
    float64, by a second route: the logits as the float64 spatial mean of the head's ``logits_map`` (the
    code scores ``logits``, computed without that map), the leaf's family (HL0 node) read from the
    hierarchy's leaf records (the code maps labels with ``leaf_to_level``' table)."""
    import jax

    from mantra_jax.manipulations.hierarchy import leaves

    family = np.array([leaf.path[0] - 1 for leaf in leaves()])  # csv L1 ids 1..7 -> HL0 nodes 0..6
    logits, truth = [], []
    for r in records:
        x = (np.asarray(r["image"], np.float64) / 255 * 2 - 1).astype(np.float32)  # preprocess's [-1, 1]
        out = jax.device_get(model.apply(variables, x[None], train=False))
        logits.append(np.asarray(out["logits_map"], np.float64).mean(axis=(0, 1, 2)))
        truth.append(family[int(r["label"])])
    logits, truth = np.stack(logits), np.array(truth)
    order = np.argsort(-logits, axis=1)  # no two float64 logits tie here (checked below)
    rank = np.argmax(order == truth[:, None], axis=1)  # 0: the true family scored highest
    z = logits - logits.max(axis=1, keepdims=True)
    ce = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(truth)), truth])
    assert all(len(set(row)) == row.size for row in logits)
    return {"n": len(truth), "ce": float(ce), **{f"top{k}": int(np.sum(rank < k)) for k in range(1, 11)}}


def _study_config(tmp_path):
    """The cpu study config at a micro size: 2 steps of 2 at 1/8 widths, the plain cross-entropy, 4
    validation and 4 training-sample records, the probe on 2 + 2 generated photos."""
    from experiments.configs.blocks import data_block
    from experiments.configs.imc_studies import get_config

    config = get_config("cpu")
    config.progress, config.width_divisor, config.train_records, config.only = False, 8, 4, "IMC-ResNet"
    config.data = data_block(patch_size=32, crop_size=16, val_records=4)
    config.data.val_dir = "fixed_sets"
    config.train.update(batch_size=2, steps_per_epoch=2, checkpoint_every_steps=2, num_epochs=1,
                        log_every_steps=1, hierarchy_weight=0.0)
    _cameras(tmp_path / "cams")
    config.cameras.update(folder=str(tmp_path / "cams"), pattern="", crop=16)
    return config


def test_a_column_config_is_an_imc385_config_of_its_variant_and_level(tmp_path):
    from experiments.configs.imc385 import get_config as imc385_config

    config = _study_config(tmp_path).to_dict()
    column = st.get_study("hierarchy").columns[2]
    cfg = st.column_config(config, column, tmp_path / "val")
    imc = imc385_config("cpu").to_dict()
    assert {k: sorted(v) if isinstance(v, dict) else None for k, v in cfg.items()} == {
        k: sorted(v) if isinstance(v, dict) else None for k, v in imc.items()}  # the same schema, block by block
    assert {k: cfg["model"][k] for k in ("variant", "hierarchy_level", "num_classes")} == {
        "variant": "imc-vgg+combined/8", "hierarchy_level": "HL2", "num_classes": 50}
    assert cfg["train"] == config["train"] and cfg["data"]["val_dir"] == str(tmp_path / "val")
    assert cfg["data"]["crop_size"] == config["data"]["crop_size"] == 16


@pytest.mark.slow
def test_one_column_trains_scores_and_reads_back(tmp_path):
    from mantra_jax.data.imc_source import IMCSource
    from mantra_jax.io.checkpoints import load_model
    from mantra_jax.train.inputs import imc_inputs

    config = _study_config(tmp_path)
    data = config.data.to_dict()
    study = st.get_study("backbone")
    results = st.run_study(study, config, tmp_path / "run")
    r = results["IMC-ResNet"]
    assert (r["variant"], r["level"], r["steps"], r["convs"]) == ("imc-resnet/8", "HL0", 2, 14)

    # the reported scores, recomputed from the saved best checkpoint on the same records: accuracies are
    # hit counts over the records, so equal exactly (the code's float32 logits differ from these by ~1e-7,
    # far below the smallest gap between two logits of a record, asserted 1e-4 below); the cross-entropy
    # is float32 arithmetic on values of order ln 7 (a few ulp, 1.2e-7 relative each): 1e-5 relative
    model, variables, _ = load_model(tmp_path / "run" / "IMC-ResNet")
    val = [{k: b[k][i] for k in ("image", "label")} for b in imc_inputs(data, 2)[1] for i in range(len(b["label"]))]
    sample = IMCSource(data["photos"] or None, "train", seed=int(data["seed"]), num_records=4,
                       crop_size=int(data["crop_size"]), patch_size=int(data["patch_size"]),
                       min_deviation=float(data["min_deviation"]))
    for split, records in (("val", val), ("train", [sample[i] for i in range(len(sample))])):
        ref = _scores_by_hand(model, variables, records)
        assert ref["n"] == 4, split
        reported = {k.split("/")[-1]: v for k, v in r.items() if k.startswith(f"{split}/HL0/top")}
        assert "top1" in reported and reported == {k: ref[k] / ref["n"] for k in reported}, (split, reported, ref)
        for key in ("ce", "loss"):  # hierarchy_weight 0: the loss is the cross-entropy
            assert r[f"{split}/{key}"] == pytest.approx(ref["ce"], rel=1e-5), (split, key)
    assert 0.0 <= r["kcmi"] <= 1.0 and r["kcmi_detail"]["test"] == 2  # the probe: tests/eval/test_camera_probe.py
    assert st.run_study(study, config, tmp_path / "run") == results  # a finished column is read back, not retrained
    assert f"{100 * r['val/HL0/top1']:.1f} / 90.8" in st.format_study(study, results)


ROW_KEYS = ["column", "convs", "filters", "kcmi", "kcmi_detail", "kernel", "level", "params", "receptive_field",
            "seconds", "steps", "train/HL0/top1", "train/HL0/top10", "train/HL0/top3", "train/HL0/top5", "train/ce",
            "train/loss", "val/HL0/top1", "val/HL0/top10", "val/HL0/top3", "val/HL0/top5", "val/ce", "val/loss",
            "variant"]


@pytest.mark.slow  # ~25 s: one micro column through the script
def test_the_script_trains_a_column_and_writes_the_table(tmp_path):
    import json
    import subprocess
    import sys

    from tests.conftest import subprocess_env

    _cameras(tmp_path / "cams")
    script = pathlib.Path(st.__file__).parent / "imc_studies.py"
    args = ["--study=backbone", f"--workdir={tmp_path / 'run'}", "--config.only=IMC-ResNet", "--config.progress=False",
            "--config.width_divisor=8", "--config.data.patch_size=32", "--config.data.crop_size=16",
            "--config.data.val_records=4", "--config.train_records=4", "--config.train.batch_size=2",
            "--config.train.steps_per_epoch=2", "--config.train.checkpoint_every_steps=2",
            f"--config.cameras.folder={tmp_path / 'cams'}", "--config.cameras.pattern=", "--config.cameras.crop=16"]
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=subprocess_env(),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads((tmp_path / "run" / "backbone" / "IMC-ResNet" / st.ROW_RESULT).read_text())
    assert sorted(row) == ROW_KEYS and row["steps"] == 2
    table = (tmp_path / "run" / "backbone" / "table.txt").read_text()
    assert table.startswith("Table 2 (backbone)") and "2 steps of 2 per column" in table
