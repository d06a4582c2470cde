"""``mantra detect`` with a PyTorch-port checkpoint: one part alone says what is missing, ``--complete-from``
supplies the other part."""

import json

import numpy as np
import pytest

from mantra_jax import cli
from tests.conftest import shared_absent, shared_dir

pytest.importorskip("torch", reason="torch is not installed (pip install 'mantra_jax[torch]')")


def _shared(rel):
    path = shared_dir() / rel
    if not path.exists():
        shared_absent(f"shared file {path} is absent (set MANTRA_SHARED or provide ../shared)")
    return path


def _image(tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 28, 3), dtype=np.uint8)).save(path)
    return path


def test_head_alone_is_one_line_and_exit_2(tmp_path, capsys):
    head = _shared("weights/AnomalyDetectorv4.pt")
    code = cli.main(["detect", str(_image(tmp_path)), "--out", str(tmp_path / "out"), "--checkpoint", str(head)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_USAGE and len(err) == 1 and "--complete-from" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # compiles the release-size network
def test_detect_with_the_port_head_completed_from_an_h5(tmp_path):
    head, h5 = _shared("weights/AnomalyDetectorv4.pt"), _shared("reference/ptrain4like_weights.h5")
    out = tmp_path / "out"
    code = cli.main(["detect", str(_image(tmp_path)), "--out", str(out), "--checkpoint", str(head),
                     "--complete-from", str(h5)])
    assert code == cli.EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["bnorm"] == "image" and summary["checkpoint"] == str(head)
