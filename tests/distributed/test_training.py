"""experiments/imc385.py and ladn.py under the launcher: 2 processes x 4 devices against 1 process x 8, the
input split by process (example keys), checkpoints across topologies, and a run killed in all processes.

Six launched training runs and three restore launches (``--slow``; built once, on one xdist worker: see
tests/conftest.py). The IMC runs use XLA's own convolutions and kernel gradients (``FAST``: the split is
under test, not the CPU speed-ups, and they halve a launch's trace and compile); the LADN runs keep the
default CPU path, under which the bounds below were measured: with XLA's kernel gradients the LADN's
rounding differences between topologies came out larger (median 2.6e-6 of a 9.4e-4 move, 5.8 % of the
elements over a tenth of it), more than the bulk bound admits.

Tolerance. The topologies differ only in the order of the batch reductions' sums (gloo all-reduces across
processes against XLA's within one process). Adam turns that rounding into parameter differences that are no
bound of float32 ulps: an element whose gradient nearly cancels may flip the sign of its update (a difference
up to 2 lr per step), and the flips propagate. So the test reads the distribution of the per-element
differences against the distance training moved the parameters (``moved``: last checkpoint against the oldest
kept, 2 steps of O(lr) per element in almost every element). A wrong split (a process reading the other's
examples, a per-process gradient) gives other gradients, so differences of the order of ``moved`` in most
elements. Rounding leaves the bulk untouched: the median difference is within BULK (1e-3) of the median move,
and at most TAIL_SHARE (1 %) of the elements differ by more than a tenth of it; the largest is Adam's
2 lr per step. Measured (Intel Xeon, 2 cores, idle, jax 0.10.2; printed with -s), 4 steps, median move 9.4e-4 in both tasks:
IMC median difference 3.7e-9, 72 of 469,758 elements over 1e-4, max 1.8e-3; LADN median 1.4e-7, 418 of
365,094 over 1e-4, max 5.8e-4.
"""

import json
import os
import pathlib
import signal
import sys
import time

import jax
import numpy as np
import pytest

from mantra_jax.io.orbax_layout import restore_inference_variables
from mantra_jax.train.writers import read_jsonl
from tests.distributed.helpers import assert_none_left, leftovers, run, start
from tests.train.tiny import FAST_COMPILE

pytestmark = pytest.mark.slow  # one xdist worker runs the module (tests/conftest.py ONE_WORKER_MODULES)
HERE = pathlib.Path(__file__).parent
REPO = HERE.parents[1]
STEPS, LR = 4, 1e-3
BULK, TAIL_SHARE = 1e-3, 0.01
IMC = {"train.batch_size": 8, "train.steps_per_epoch": STEPS, "train.num_epochs": 1,
       "train.checkpoint_every_steps": 1, "train.log_every_steps": 1, "data.val_records": 8, "data.crop_size": 16,
       "progress": False}
LADN = {"train.batch_size": 8, "train.steps_per_epoch": STEPS, "train.num_epochs": 1,
        "train.checkpoint_every_steps": 1, "train.log_every_steps": 1, "data.val_records": 8, "data.patch_size": 32,
        "progress": False}
# XLA's own convolutions and kernel gradients for the IMC runs (tests/train/tiny.py; module docstring)
FAST = {f"model.{k}": v for k, v in FAST_COMPILE.items()}
SCRIPT = {"imc": "experiments/imc385.py", "ladn": "experiments/ladn.py"}


def _flags(overrides):
    return [f"--config.{k}={v}" for k, v in overrides.items()]


def _overrides(task, root):
    return {**IMC, **FAST, "data.val_dir": str(root / "fixed_sets")} if task == "imc" else dict(LADN)


def _topology(n, d):
    return ["-n", str(n), "--devices-per-process", str(d), "--heartbeat-timeout", "10", "--init-timeout", "60"]


def _train_command(task, root, workdir):
    return [sys.executable, SCRIPT[task], f"--workdir={workdir}"] + _flags(_overrides(task, root))


def _env(root):
    # one persistent compilation cache for all runs: a topology's second run (killed, resumed) loads it
    return {"JAX_COMPILATION_CACHE_DIR": str(root / "xla"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def _train(task, root, name, n, d):
    proc = run(_topology(n, d), _train_command(task, root, root / name), timeout=900, **_env(root))
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def _killed_after_first_checkpoint(task, root, name, n, d):
    """The run started, then its process 1 SIGKILLed once checkpoint 1 is on disk; the launcher stops the
    others. Returns (status, stdout, stderr, seconds from the kill to the launcher's exit)."""
    workdir = root / name
    proc, tag = start(_topology(n, d), _train_command(task, root, workdir), **_env(root))
    deadline = time.monotonic() + 900
    while not (workdir / "checkpoints" / "1").is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = leftovers(tag, "MANTRA_PROCESS_ID=1")
    assert len(victims) == 1, victims  # the child itself (grain reads in threads: no workers)
    os.kill(victims[0], signal.SIGKILL)
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=300)
    took = time.monotonic() - t0
    assert_none_left(tag)
    return proc.returncode, out, err, took


def _restore_all(root, n, d, runs):
    """mp_check.py's restore of each (task, run name) under n processes x d devices (one launch):
    ``{(task, name): [result of process 0, ...]}``."""
    spec = [[task, str(root / name), _overrides(task, root)] for task, name in runs]
    proc = run(_topology(n, d), [sys.executable, str(HERE / "mp_check.py"), json.dumps(spec)], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line.split("RESULT ", 1)[1]) for line in proc.stdout.splitlines() if "RESULT " in line]
    lines.sort(key=lambda r: r["process"])
    assert [(r["process"], r["processes"], r["devices"]) for r in lines] == [(i, n, n * d) for i in range(n)]
    return {run_: [r["runs"][i] for r in lines] for i, run_ in enumerate(runs)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiproc")
    out = {"root": root, "stdout": {}}
    for task in ("imc", "ladn"):
        for n, d in ((1, 8), (2, 4)):
            out["stdout"][f"{task}{n}x{d}"] = _train(task, root, f"{task}{n}x{d}", n, d).stdout
    out["killed"] = _killed_after_first_checkpoint("imc", root, "imc_killed", 2, 4)
    out["killed_steps"] = sorted(int(p.name) for p in (root / "imc_killed" / "checkpoints").iterdir()
                                 if p.name.isdigit())
    out["stdout"]["resumed"] = _train("imc", root, "imc_killed", 2, 4).stdout
    written = [(task, f"{task}{n}x{d}") for task in ("imc", "ladn") for n, d in ((1, 8), (2, 4))]
    out["restored"] = {(n, d): _restore_all(root, n, d, written) for n, d in ((1, 8), (2, 4), (1, 1))}
    return out


def _params_at(workdir, step):
    params = restore_inference_variables(workdir / "checkpoints" / str(step))[1]["params"]
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(params)])


def _params(workdir):
    params = restore_inference_variables(workdir / "checkpoints")[1]["params"]
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(params)])


@pytest.mark.parametrize("task", ["imc", "ladn"])
def test_two_processes_of_four_devices_train_like_one_process_of_eight(runs, task):
    root = runs["root"]
    eight, two = (_params(root / f"{task}{t}") for t in ("1x8", "2x4"))
    start_params = _params_at(root / f"{task}1x8", 2)  # the oldest checkpoint kept (keep = 3)
    diff, moved = np.abs(two - eight), np.median(np.abs(eight - start_params))
    report = {"median_diff": float(np.median(diff)), "median_moved": float(moved),
              "share_over_tenth": float(np.mean(diff > 0.1 * moved)), "max_diff": float(diff.max())}
    assert moved > 0.1 * LR, report  # training really moved them: O(lr) per step
    assert report["median_diff"] <= BULK * moved, report
    assert report["share_over_tenth"] <= TAIL_SHARE, report
    assert report["max_diff"] <= 2 * LR * STEPS, report
    print(task, report)


@pytest.mark.parametrize("task", ["imc", "ladn"])
def test_each_global_batch_holds_the_same_examples_on_every_topology(runs, task):
    # the batch after the restored state, by example keys: 1 process (1 or 8 devices) reads it whole,
    # 2 processes read its halves in process order; checkpoints of both topologies point to the same batch
    batches = []
    for name in (f"{task}1x8", f"{task}2x4"):
        for topology, results in runs["restored"].items():
            parts = results[(task, name)]
            batches.append(sum((r["next_keys"] for r in parts), []))
            assert [len(r["next_keys"]) for r in parts] == [8 // topology[0]] * topology[0]
    assert all(b == batches[0] for b in batches) and len(set(batches[0])) == 8  # none read twice


@pytest.mark.parametrize("task", ["imc", "ladn"])
def test_checkpoints_restore_bit_identically_on_other_topologies(runs, task):
    root = runs["root"]
    for name in (f"{task}1x8", f"{task}2x4"):
        results = [r for res in runs["restored"].values() for r in res[(task, name)]]
        assert {r["params"] for r in results} == {results[0]["params"]}, name
        assert {r["batch_stats"] for r in results} == {results[0]["batch_stats"]}, name
        assert all(r["step"] == STEPS and r["data_state"] == results[0]["data_state"] for r in results), name
        assert results[0]["data_state"] == {"next_index": STEPS}
        ckpt = restore_inference_variables(root / name / "checkpoints")[1]  # as written, read here
        from tests.distributed.mp_check import digest

        assert digest(ckpt["params"]) == results[0]["params"]


def _state(workdir):
    from mantra_jax.io.orbax_layout import _read_step  # host numpy arrays: no need for the writers' devices

    return _read_step(workdir / "checkpoints" / str(STEPS))[1]


def test_killing_one_process_stops_the_others_with_one_line_and_the_run_resumes_bit_identically(runs):
    root = runs["root"]
    code, _, err, took = runs["killed"]
    assert code == 128 + signal.SIGKILL, err[-2000:]
    launcher_lines = [line for line in err.splitlines() if line.startswith("launch: ")]
    assert launcher_lines == ["launch: process 1 was killed by SIGKILL; stopping the other 1"], err[-2000:]
    assert took < 10 + 30  # the launcher's grace (JAX takes SIGTERM as a preemption notice) and start-up slack
    assert max(runs["killed_steps"]) < STEPS  # killed mid-run
    k = max(runs["killed_steps"])
    assert f"[p0] imc385: resuming {root / 'imc_killed'} from step {k}" in runs["stdout"]["resumed"]
    a, b = _state(root / "imc_killed"), _state(root / "imc2x4")
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    losses = lambda d: [(r["step"], r["split"], r["loss"]) for r in read_jsonl(d / "metrics.jsonl")]  # noqa: E731
    assert losses(root / "imc_killed") == losses(root / "imc2x4")


@pytest.mark.parametrize("task", ["imc", "ladn"])
def test_only_process_0_writes_metrics_and_the_summary_and_every_line_is_labelled(runs, task):
    workdir, out = runs["root"] / f"{task}2x4", runs["stdout"][f"{task}2x4"]
    records = [(r["step"], r["split"]) for r in read_jsonl(workdir / "metrics.jsonl")]
    assert len(records) == len(set(records)) and (STEPS, "val") in records  # each line once
    for split in ("train", "val"):
        assert len(list((workdir / "tensorboard" / split).iterdir())) == 1
    assert json.loads((workdir / "summary.json").read_text())["steps"] == STEPS
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines and all(line.startswith(("[p0] ", "[p1] ")) for line in lines)
    assert any(" steps in " in line for line in lines if line.startswith("[p0] "))
    assert not any(" steps in " in line for line in lines if line.startswith("[p1] "))


