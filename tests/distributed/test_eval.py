"""``mantra eval`` under the launcher: the images split over 2 processes, the merged results equal to one
process's (same per_image.csv order), and an eval killed in one process resumed by the next launch."""

import csv
import io
import json
import os
import signal
import sys
import time

import pytest

from mantra_jax import cli
from mantra_jax.io.msgpack_weights import save_weights_file
from tests.cli.test_hostile_inputs import CFG, _mask, _pairs_csv, _png, _variables
from tests.distributed.helpers import assert_none_left, leftovers, run, start

pytestmark = pytest.mark.slow  # three launches of two processes, each compiling the tiny model
N_IMAGES = 24
EVAL = [sys.executable, "-m", "mantra_jax.cli", "eval"]
TIMING = ("seconds",)  # per-image wall time: differs from run to run on one process too


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    ckpt = root / "tiny.msgpack"
    save_weights_file(ckpt, CFG, _variables())
    rows = [(_png(root / f"im{k:02d}.png", k), _mask(root / f"im{k:02d}_gt.png") if k % 3 else None)
            for k in range(N_IMAGES)]
    pairs = _pairs_csv(root / "pairs.csv", rows)
    args = ["--pairs", str(pairs), "-c", str(ckpt), "--no-progress"]
    assert cli.main(["eval", *args, "-o", str(root / "one")]) == cli.EXIT_OK
    return root, args


def _rows(out):
    rows = list(csv.DictReader(io.StringIO((out / "per_image.csv").read_text())))
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _metrics(out):
    return json.loads((out / "metrics.json").read_text())["metrics"]


def _records(out):
    lines = []
    for log in sorted(out.glob("progress*.jsonl")):
        lines += [json.loads(line) for line in log.read_text().splitlines()[1:] if line.strip()]
    return lines


def test_two_processes_give_the_results_of_one(setup):
    root, args = setup
    proc = run(["-n", "2"], EVAL + args + ["-o", str(root / "two")], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _metrics(root / "two") == _metrics(root / "one")
    assert _rows(root / "two") == _rows(root / "one") and len(_rows(root / "one")) == N_IMAGES
    records = _records(root / "two")  # each image scored once, by the process of its index
    assert sorted(r["key"] for r in records) == sorted(r["key"] for r in _records(root / "one"))
    p1 = [json.loads(line)["image"] for line in (root / "two" / "progress.p1.jsonl").read_text().splitlines()[1:]]
    assert p1 == [str(root / f"im{k:02d}.png") for k in range(1, N_IMAGES, 2)]
    assert [line for line in proc.stderr.splitlines() if "image(s), pixel AUC" in line][0].startswith("[p0] ")


def test_an_eval_killed_in_one_process_resumes_and_gives_the_results_of_one(setup):
    root, args = setup
    out = root / "killed"
    proc, tag = start(["-n", "2"], EVAL + args + ["-o", str(out)])
    log, deadline = out / "progress.p1.jsonl", time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:  # process 1's first record is on disk
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.01)
    victims = leftovers(tag, "MANTRA_PROCESS_ID=1")
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert_none_left(tag)
    assert victims and proc.returncode == 128 + signal.SIGKILL, err[-2000:]
    assert not (out / "metrics.json").exists() or not json.loads((out / "metrics.json").read_text())["run"]["complete"]
    done_before = {r["key"] for r in _records(out)}
    assert 0 < len(done_before) < N_IMAGES
    again = run(["-n", "2"], EVAL + args + ["-o", str(out)], timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming in {out}: " in again.stderr
    assert _metrics(out) == _metrics(root / "one") and _rows(out) == _rows(root / "one")
    keys = [r["key"] for r in _records(out)]
    assert sorted(set(keys)) == sorted(r["key"] for r in _records(root / "one"))
    assert len(keys) == N_IMAGES  # no finished image was scored again
