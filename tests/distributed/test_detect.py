"""``mantra detect`` under the launcher: the images split over 2 processes, one summary equal to one
process's (same image order, same maps), a broken image reported once, and no process left behind."""

import csv
import io
import json
import sys

import numpy as np
import pytest

from mantra_jax import cli
from mantra_jax.io.msgpack_weights import save_weights_file
from mantra_jax.io.outputs import MANIFEST, read_manifest
from tests.cli.test_hostile_inputs import CFG, _png, _variables
from tests.distributed.helpers import run

pytestmark = pytest.mark.slow  # a launch of two processes, each compiling the tiny model
N_IMAGES = 9
DETECT = [sys.executable, "-m", "mantra_jax.cli", "detect"]
TIMING = ("seconds",)  # per-image wall time: differs from run to run on one process too


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect")
    ckpt = root / "tiny.msgpack"
    save_weights_file(ckpt, CFG, _variables())
    photos = root / "photos"
    for k in range(N_IMAGES):
        _png(photos / f"im{k:02d}.png", k)
    (photos / "im04.png").write_bytes(b"not an image")  # process 0's share (index 4): reported once
    args = [str(photos), "-c", str(ckpt), "--no-progress"]
    assert cli.main(["detect", *args, "-o", str(root / "one")]) == cli.EXIT_INPUTS_FAILED
    proc = run(["-n", "2"], DETECT + args + ["-o", str(root / "two")], timeout=600)
    return root, proc


def _images(out):
    doc = json.loads((out / "summary.json").read_text())
    return [{k: v for k, v in r.items() if k not in TIMING} for r in doc["images"]], doc


def test_two_processes_write_the_summary_and_maps_of_one(setup):
    root, proc = setup
    assert proc.returncode == cli.EXIT_INPUTS_FAILED, proc.stderr[-3000:]
    (one, doc1), (two, doc2) = _images(root / "one"), _images(root / "two")
    assert two == one and len(one) == N_IMAGES  # every image once, in the inputs' order
    assert [r["status"] for r in two].count("error") == 1
    for key in ("n_images", "n_ok", "n_failed", "complete", "not_processed"):
        assert doc2[key] == doc1[key], key
    rows = lambda out: [{k: v for k, v in r.items() if k not in TIMING}  # noqa: E731
                        for r in csv.DictReader(io.StringIO((out / "summary.csv").read_text()))]
    assert rows(root / "two") == rows(root / "one")
    for r in one:
        if r["status"] == "ok":
            np.testing.assert_array_equal(np.load(root / "two" / r["npy_file"]), np.load(root / "one" / r["npy_file"]))


def test_each_process_did_its_share_and_process_0_alone_reports(setup):
    root, proc = setup
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("launch: ")]
    assert all(line.startswith(("[p0] ", "[p1] ")) for line in lines), lines
    done = [line for line in lines if "image(s) processed" in line]
    assert len(done) == 1 and done[0].startswith("[p0] ") and "8 image(s) processed, 1 failed" in done[0]
    skipped = [line for line in lines if "skipped" in line]
    assert len(skipped) == 1 and skipped[0].startswith("[p0] ") and "im04.png" in skipped[0]
    assert not list((root / "two").glob("records.p*.json"))  # merged by process 0, then removed
    listed = read_manifest(root / "two")  # every output, process 1's too: never taken for a user's file
    written = {f.relative_to(root / "two").as_posix() for f in (root / "two").rglob("*")
               if f.is_file() and f.name != MANIFEST}
    assert written <= listed and {"summary.json", "summary.csv"} <= written
