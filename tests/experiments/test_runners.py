"""Experiment configs, and the experiment runners end to end on micro settings of the real pipeline."""

import pathlib

import jax
import numpy as np
import pytest

from experiments.configs import ablation_anomaly, imc385, ladn
from experiments.runners import run_anomaly_ablation, run_imc385, run_ladn
from mantra_jax.io.orbax_layout import restore_inference_variables
from tests.conftest import subprocess_env
from tests.train.tiny import fast_compile_models

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "configs"
_MODULES = {"imc385": imc385, "ladn": ladn, "ablation_anomaly": ablation_anomaly}


def _config(name, arg=None):
    return _MODULES[name].get_config(arg)


def test_paper_configs_hold_the_paper_settings():
    for name in ("imc385", "ladn", "ablation_anomaly"):
        c = _config(name, "paper")
        assert (c.train.batch_size, c.train.steps_per_epoch, c.train.learning_rate) == (64, 1000, 1e-4)
        assert (c.train.patience, c.train.factor, c.model.variant) == (20, 0.5, "ptrain4")
    assert _config("imc385", "paper").data.crop_size == 128
    assert _config("ladn", "paper").data.patch_size == 256
    assert _config("ladn", "paper").train.featex_learning_rate == 5e-5


def test_each_default_has_one_home():
    from mantra_jax.manipulations.catalogue import CATALOGUE
    from mantra_jax.train.plateau import PAPER_PATIENCE

    from mantra_jax.train.hierarchy_levels import resolve_level

    m = _config("imc385").model  # neither level nor class count set: the leaf level, the catalogue's size
    assert resolve_level(m.hierarchy_level, m.num_classes) == ("HL5", len(CATALOGUE))
    assert _config("ladn", "paper").train.patience == PAPER_PATIENCE
    for name in ("imc385", "ladn", "ablation_anomaly"):
        assert _config(name).model.dtype == "float32"


def test_cpu_is_the_default_and_the_only_tiny_config():
    for name in ("imc385", "ladn", "ablation_anomaly"):
        assert _config(name).name.endswith("-cpu") and _config(name).model.variant == "tiny"
    with pytest.raises(ValueError):
        _config("imc385", "gpu")


def test_ablation_rows_are_table6():
    rows = [(r["name"], r["feature"], r["windows"]) for r in _config("ablation_anomaly").features]
    assert rows == [("DF", "df", []), ("ZF", "zf", []), ("FAC7", "fac", [7]), ("FAC7-15", "fac", [7, 15]),
                    ("FAC7-15-31", "fac", [7, 15, 31]), ("TAC7-15-31", "time_z", [7, 15, 31])]


def test_ablation_without_a_pretrained_feature_extractor_raises(tmp_path):
    with pytest.raises(ValueError, match="imc_checkpoint"):
        run_anomaly_ablation(_config("ablation_anomaly"), tmp_path)


@pytest.fixture(scope="module")
def imc_workdir(tmp_path_factory):
    c = _config("imc385")
    c.progress = False
    c.data.crop_size, c.data.val_records = 16, 2
    c.train.batch_size, c.train.steps_per_epoch, c.train.num_epochs, c.train.log_every_steps = 2, 2, 1, 1
    workdir = tmp_path_factory.mktemp("imc")
    with fast_compile_models():  # the runner and data pipeline are under test, not the CPU convolution speed-ups
        summary = run_imc385(c, workdir)
    return workdir, summary


@pytest.mark.slow
def test_imc385_runs_on_the_real_pipeline(imc_workdir):
    workdir, summary = imc_workdir
    assert summary["steps"] == 2 and np.isfinite(summary["val"]["loss"])
    assert {"HL0/top1", "HL5/top10"} <= set(summary["val"])
    config, variables = restore_inference_variables(workdir)
    assert config == {"kind": "imc", "variant": "tiny", "num_classes": 385, "dtype": "float32"}
    assert variables["params"]["IMCHead"]["kernel"].shape == (3, 3, 64, 385)
    bayar = variables["params"]["Featex"]["b1c1"]["bayar_kernel"].astype(np.float64)  # projected each step
    np.testing.assert_allclose(bayar[2, 2], -1.0, atol=1e-6)
    np.testing.assert_allclose(bayar.sum(axis=(0, 1)), 0.0, atol=1e-4)
    for name in ("config.json", "summary.json", "metrics.jsonl"):
        assert (workdir / name).exists()


@pytest.fixture(scope="module")
def ladn_hf_workdir(imc_workdir, tmp_path_factory):
    c = _config("ladn")
    c.progress = False
    c.setting, c.imc_checkpoint = "HF", str(imc_workdir[0])
    c.model.windows = (3,)
    c.data.patch_size, c.data.val_records = 32, 2
    c.train.batch_size, c.train.steps_per_epoch, c.train.num_epochs = 2, 2, 1
    workdir = tmp_path_factory.mktemp("ladn")
    with fast_compile_models():
        return workdir, run_ladn(c, workdir)


@pytest.mark.slow  # ~12 s: a localisation run
def test_ladn_hf_keeps_the_imc_feature_extractor_frozen(imc_workdir, ladn_hf_workdir):
    tmp_path, summary = ladn_hf_workdir
    assert summary["steps"] == 2 and "f1/overall" in summary["val"]
    config, ladn = restore_inference_variables(tmp_path / "checkpoints")
    assert config["kind"] == "mantranet" and config["windows"] == [3]
    _, imc = restore_inference_variables(imc_workdir[0])
    jax.tree.map(np.testing.assert_array_equal, ladn["params"]["Featex"], imc["params"]["Featex"])
    kernel = ladn["params"]["LADN"]["outlierTrans"]["kernel"].astype(np.float64)  # projected each step
    np.testing.assert_allclose(np.linalg.norm(kernel.reshape(-1, kernel.shape[-1]), axis=0), 1.0, atol=1e-5)
    assert (ladn["params"]["LADN"]["glbStd"]["min_std"] >= 0).all()


@pytest.mark.slow  # ~21 s: builds both slow fixtures
def test_mantra_detect_reads_an_orbax_training_checkpoint(ladn_hf_workdir, tmp_path, capsys):
    from PIL import Image

    from mantra_jax import cli
    from mantra_jax.infer.whole import predict
    from mantra_jax.models.config import model_from_config

    image = np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    workdir = ladn_hf_workdir[0]
    code = cli.main(["detect", str(tmp_path / "photo.png"), "-c", str(workdir), "-o", str(tmp_path / "out"),
                     "--no-progress"])
    assert code == cli.EXIT_OK, capsys.readouterr().err
    config, variables = restore_inference_variables(workdir)
    want = predict(model_from_config(config), variables, image)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "photo.npy"), want, atol=1e-6)


@pytest.mark.parametrize("args, code, match", [
    (["--config.bogus=1"], 2, "bad flag"),
    ([f"--config={CONFIGS / 'ladn.py'}:gpu"], 2, "unknown preset"),
    (["--config.setting=ZZ"], 1, "unknown end-to-end setting"),
    (["--config.setting=HF"], 1, "imc_checkpoint"),
    (["--config.setting=HF", "--config.model.dtype=bfloat16"], 1, "imc_checkpoint"),  # the flag is accepted
    (["--config.model.dtype=float16"], 1, "dtype"),
])
def test_experiment_scripts_report_bad_settings_in_one_line(tmp_path, args, code, match):
    import subprocess
    import sys

    script = CONFIGS.parent / "ladn.py"
    proc = subprocess.run([sys.executable, str(script), f"--workdir={tmp_path / 'run'}", *args], capture_output=True,
                          text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode == code, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and match in lines[0] and "Traceback" not in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize("name", ["imc385", "ladn"])
def test_the_model_block_chooses_how_the_runner_builds_the_model_compute(name):
    from mantra_jax.models.compute import Compute
    from mantra_jax.models.config import check_config
    from experiments.runners import _built

    c = _config(name)
    assert (c.model.kernel_grad, c.model.conv_algorithm) == (Compute().kernel_grad, Compute().conv_algorithm)
    assert (c.model.kernel_grad, c.model.conv_algorithm) == ("auto", "auto")  # resolved per layer and platform
    model_config = check_config({"kind": "imc" if name == "imc385" else "mantranet", "variant": "tiny"})
    c.model.kernel_grad, c.model.conv_algorithm = "matmul", "winograd2"
    assert _built(model_config, c.model.to_dict()).compute == Compute(kernel_grad="matmul", conv_algorithm="winograd2")
    assert _built(model_config, {}).compute == Compute()  # a config from before the settings

