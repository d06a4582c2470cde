"""PyTorch-port checkpoints: the name map against the files themselves, the port's own output, errors.

The expected placements below are written out independently of ``io.torch_pt``'s tables: PyTorch
convolutions are (O, I, kh, kw) and ours (kh, kw, I, O); the port's ConvLSTM convolution reads
``cat([input (64), hidden (8)])``; ``sigma_F`` is (1, C, 1, 1).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mantra_jax
from mantra_jax.errors import CheckpointError, WeightFileError
from mantra_jax.io.checkpoints import load_model
from tests.conftest import shared_absent, shared_dir

torch = pytest.importorskip("torch", reason="torch is not installed (the optional extra: pip install "
                                            "'mantra_jax[torch]'); the PyTorch-checkpoint tests need it")

# The release's trunk layers after b1c1, in order: what the port's middle_and_last_block.{0,2,...,22} are.
TRUNK_ORDER = ["b1c2", "b2c1", "b2c2", "b3c1", "b3c2", "b3c3", "b4c1", "b4c2", "b4c3", "b5c1", "b5c2", "transform"]
U = 2.0 ** -24


def _oihw(k):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(k, np.float32).transpose(3, 2, 0, 1)))


def port_state_dict(variables) -> dict[str, dict]:
    """``{"IMTFE": ..., "AnomalyDetector": ...}`` state dicts holding ``variables`` in the port's layout."""
    from mantra_jax.ops.srm import srm_kernel

    f, ladn = variables["params"]["Featex"], variables["params"]["LADN"]
    imtfe = {"init_conv.weight": _oihw(f["b1c1"]["regular_kernel"]),
             "BayarConv2D.weight": _oihw(f["b1c1"]["bayar_kernel"]),
             "SRMConv2D.weight": _oihw(srm_kernel())}
    for i, layer in enumerate(TRUNK_ORDER):
        imtfe[f"middle_and_last_block.{2 * i}.weight"] = _oihw(f[layer]["kernel"])
        imtfe[f"middle_and_last_block.{2 * i}.bias"] = torch.from_numpy(np.array(f[layer]["bias"]))
    lstm = ladn["cLSTM"]
    both = np.concatenate([np.asarray(lstm["kernel"]), np.asarray(lstm["recurrent_kernel"])], axis=2)
    head = {"sigma_F": torch.from_numpy(np.asarray(ladn["glbStd"]["min_std"]).reshape(1, 64, 1, 1).copy()),
            "adaptation.weight": _oihw(ladn["outlierTrans"]["kernel"]),
            "conv_lstm.cell_list.0.conv.weight": _oihw(both),
            "conv_lstm.cell_list.0.conv.bias": torch.from_numpy(np.array(lstm["bias"])),
            "end.0.weight": _oihw(ladn["pred"]["kernel"]),
            "end.0.bias": torch.from_numpy(np.array(ladn["pred"]["bias"]))}
    return {"IMTFE": imtfe, "AnomalyDetector": head}


@pytest.fixture(scope="module")
def release(request):
    path = shared_dir() / "reference" / "ptrain4like_weights.h5"
    if not path.exists():
        shared_absent(f"reference file {path} is absent (set MANTRA_SHARED or provide ../shared)")
    model, variables = mantra_jax.load_keras_weights(path)
    return path, model, jax.tree.map(np.asarray, variables)


@pytest.fixture
def head_file():
    path = shared_dir() / "weights" / "AnomalyDetectorv4.pt"
    if not path.exists():
        shared_absent(f"shared weights {path} are absent (set MANTRA_SHARED or provide ../shared)")
    return path


def _save(obj, path: pathlib.Path) -> pathlib.Path:
    torch.save(obj, path)
    return path


def _params_only(variables):
    return {"params": variables["params"]}


def test_full_port_file_under_a_prefix_loads_as_the_same_network(release, tmp_path):
    _, _, v = release
    parts = port_state_dict(v)
    sd = {f"module.{part}.{k}": t for part, d in parts.items() for k, t in d.items()}
    model, got, cfg = load_model(_save(sd, tmp_path / "MantraNetv4.pt"))
    chex.assert_trees_all_close(_params_only(jax.tree.map(np.asarray, got)), _params_only(v), atol=0, rtol=0)
    assert cfg["bnorm"] == "image" and model.bnorm_statistics == "image"  # the port's own convention


def test_training_checkpoint_wrapper_is_unwrapped(release, tmp_path):
    """IMDL-BenCo's train.py layout: ``{"model": state dict, "optimizer": ..., "epoch": ...}``, the network
    held by a wrapper (``model.``)."""
    _, _, v = release
    parts = port_state_dict(v)
    sd = {f"model.{part}.{k}": t for part, d in parts.items() for k, t in d.items()}
    ckpt = {"model": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}, "epoch": 3}
    _, got, _ = load_model(_save(ckpt, tmp_path / "checkpoint-3.pth"))
    chex.assert_trees_all_close(_params_only(jax.tree.map(np.asarray, got)), _params_only(v), atol=0, rtol=0)


def test_feature_extractor_alone_with_head_from_rest_is_the_release_model(release, tmp_path):
    path, release_model, v = release
    model, got, cfg = load_model(_save(port_state_dict(v)["IMTFE"], tmp_path / "IMTFEv4.pt"), rest=path)
    chex.assert_trees_all_close(jax.tree.map(np.asarray, got), v, atol=0, rtol=0)  # moving statistics too
    assert model == release_model and "bnorm" not in cfg


def test_real_head_values_land_where_the_name_map_says(release, head_file):
    path, _, v = release
    sd = {k: t.numpy() for k, t in torch.load(head_file, weights_only=True).items()}
    assert sum(a.size for a in sd.values()) == 129_769
    model, got, _ = load_model(head_file, rest=path)
    ladn = jax.tree.map(np.asarray, got["params"]["LADN"])
    w = sd["conv_lstm.cell_list.0.conv.weight"]  # (32, 72, 7, 7)
    expected = {
        "outlierTrans": {"kernel": sd["adaptation.weight"][:, :, 0, 0].T[None, None]},
        "glbStd": {"min_std": sd["sigma_F"][0, :, 0, 0][None, None, None]},
        "cLSTM": {"kernel": np.moveaxis(w[:, :64], (0, 1), (3, 2)),
                  "recurrent_kernel": np.moveaxis(w[:, 64:], (0, 1), (3, 2)),
                  "bias": sd["conv_lstm.cell_list.0.conv.bias"]},
        "pred": {"kernel": np.moveaxis(sd["end.0.weight"], (0, 1), (3, 2)), "bias": sd["end.0.bias"]},
    }
    chex.assert_trees_all_close(ladn, expected, atol=0, rtol=0)
    chex.assert_trees_all_close(jax.tree.map(np.asarray, got["params"]["Featex"]), v["params"]["Featex"],
                                atol=0, rtol=0)  # the rest came from the .h5
    assert model.bnorm_statistics == "image"


def _port_runner() -> tuple[pathlib.Path, pathlib.Path]:
    """(python of the bench's torch venv, the port's mantranet.py) from ../shared/bench's set-up."""
    peers = pathlib.Path(os.environ.get("MANTRA_PEERS", pathlib.Path.home() / ".cache" / "mantra_bench" / "src"))
    python = pathlib.Path(os.environ.get("MANTRA_BENCH_TORCH_PY",
                                         pathlib.Path.home() / ".cache" / "mantra_bench" / "torch" / "bin" / "python"))
    port = peers / "torchport" / "mantranet.py"
    if not (python.exists() and port.exists()):
        pytest.skip(f"the PyTorch port ({port}) or its venv ({python}) is absent: set it up with "
                    "../shared/bench/get_peers.sh and side_by_side.sh (README there)")
    return python, port


# The port's module imports OpenCV, matplotlib, PIL and PyTorch Lightning for its demo helpers only; where the
# bench's venv lacks one, an empty module stands in (the AnomalyDetector uses none of them).
RUN_PORT = """
import importlib.util, sys, types
import numpy as np, torch
torch.set_num_threads(1)
for top, names in {"cv2": ["cv2"], "matplotlib": ["matplotlib", "matplotlib.pyplot"], "PIL": ["PIL", "PIL.Image"],
                   "pytorch_lightning": ["pytorch_lightning"]}.items():
    if importlib.util.find_spec(top) is None:
        sys.modules.update({name: types.ModuleType(name) for name in names})
sys.modules["cv2"].__dict__.setdefault("detail_ImageFeatures", None)
spec = importlib.util.spec_from_file_location("port_mantranet", sys.argv[1])
port = importlib.util.module_from_spec(spec)
spec.loader.exec_module(port)
head = port.AnomalyDetector()
head.load_state_dict(torch.load(sys.argv[2], weights_only=True))
head.eval()
x = np.load(sys.argv[3])
with torch.no_grad():
    p = head(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
np.save(sys.argv[4], p.numpy().transpose(0, 2, 3, 1))
"""


@pytest.mark.slow  # ~15 s: the port imports matplotlib, OpenCV and PyTorch Lightning
def test_real_head_output_equals_the_pytorch_port(release, head_file, tmp_path):
    """Same unit-norm features (what the feature extractor ends with) into the port's AnomalyDetector and
    ours. Bound (relative to pred's scale, float32 u = 2^-24, both implementations, random-walk dot products
    as in test_keras_h5): outlierTrans 2 sqrt(256) u; per-image moments and the 31x31 window means (the
    port's average pool sums up to 961 terms, ours by doubling) 2 sqrt(961) u + 2 (log2 31 + 2) u each;
    the ConvLSTM's 4 steps of two chained 7x7x72 products 2 * 8 sqrt(3528) u; pred 2 sqrt(392) u."""
    python, port = _port_runner()
    path, _, _ = release
    model, v, _ = load_model(head_file, rest=path)
    x = np.random.default_rng(0).normal(size=(1, 21, 27, 256)).astype(np.float32)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    np.save(tmp_path / "x.npy", x)
    run = subprocess.run([str(python), "-c", RUN_PORT, str(port), str(head_file), str(tmp_path / "x.npy"),
                          str(tmp_path / "p.npy")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    theirs = np.load(tmp_path / "p.npy").astype(np.float64)
    from mantra_jax.models.ladn import AnomalyDetector

    ladn = AnomalyDetector(windows=model.windows, bnorm_statistics="image")
    ours = ladn.apply({"params": v["params"]["LADN"], "batch_stats": v["batch_stats"]["LADN"]}, jnp.asarray(x))
    tol = (2 * np.sqrt(256) + 2 * (2 * np.sqrt(961) + 2 * (np.log2(31) + 2)) + 2 * 8 * np.sqrt(3528)
           + 2 * np.sqrt(392)) * U
    chex.assert_shape(ours["pred"], theirs.shape)
    err = np.abs(np.asarray(ours["pred"], np.float64) - theirs).max() / np.abs(theirs).max()
    print(f"port parity: relative error {err:.2e}, bound {tol:.2e}")
    assert err < tol, (err, tol)
    assert theirs.std() > 1e-3  # a real map, not a constant


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_file_holding_one_part_without_rest_says_what_is_missing(head_file):
    with pytest.raises(CheckpointError) as e:
        load_model(head_file)
    assert "only the AnomalyDetector" in _one_line(e) and "--complete-from" in str(e.value)


@pytest.mark.parametrize("case, message", [
    ("shape", "tensor end.0.weight has shape (1, 8, 5, 5), expected (1, 8, 7, 7)"),
    ("unexpected", "unexpected tensor AnomalyDetector.extra.weight"),
    ("missing", "AnomalyDetector is missing tensor(s) end.0.bias"),
    ("two_prefixes", "AnomalyDetector tensors under several prefixes"),
    ("integer", "tensor AnomalyDetector.end.0.bias holds torch.int64"),
    ("not_a_dict", "holds a list, not a state dict"),
])
def test_bad_state_dicts_give_one_line_naming_the_tensor(release, tmp_path, case, message):
    _, _, v = release
    parts = port_state_dict(v)
    sd = {f"{part}.{k}": t for part, d in parts.items() for k, t in d.items()}
    if case == "shape":
        sd["AnomalyDetector.end.0.weight"] = torch.zeros(1, 8, 5, 5)
    elif case == "unexpected":
        sd["AnomalyDetector.extra.weight"] = torch.zeros(1)
    elif case == "missing":
        del sd["AnomalyDetector.end.0.bias"]
    elif case == "two_prefixes":
        sd["module.AnomalyDetector.end.0.bias"] = sd.pop("AnomalyDetector.end.0.bias")
    elif case == "integer":
        sd["AnomalyDetector.end.0.bias"] = torch.zeros(1, dtype=torch.int64)
    obj = list(sd.values()) if case == "not_a_dict" else sd
    with pytest.raises(CheckpointError) as e:
        load_model(_save(obj, tmp_path / "bad.pt"))
    assert message in _one_line(e)


class _Payload:
    """Unpickling this would run ``open(target, "w")``: the safe loader must refuse it without running it."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_file_needing_a_full_unpickle_is_refused_without_running_it(tmp_path):
    target = tmp_path / "ran"
    path = _save({"weight": torch.zeros(1), "payload": _Payload(str(target))}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    assert "safe loader" in _one_line(e)
    assert not target.exists()


def test_without_torch_one_line_names_the_extra(tmp_path, monkeypatch):
    path = _save({"x": torch.zeros(1)}, tmp_path / "a.pt")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    assert "pip install 'mantra_jax[torch]'" in _one_line(e)


def test_rest_is_refused_for_files_that_are_not_pytorch(release):
    path, _, _ = release
    with pytest.raises(CheckpointError, match="applies only to a PyTorch checkpoint"):
        load_model(path, rest=path)


def test_is_a_weight_file_error_from_the_library(release, tmp_path):
    from mantra_jax.io.torch_pt import load_torch_weights

    with pytest.raises(WeightFileError):
        load_torch_weights(_save({"end.0.bias": torch.zeros(1)}, tmp_path / "x.pt"))
