"""The training loop end to end on the tiny synthetic task, with a real SIGKILL and restart."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from mantra_jax.train.tensorboard import read_scalars
from mantra_jax.train.writers import read_jsonl
from tests.conftest import subprocess_env

HERE = pathlib.Path(__file__).parent
STEPS, KILL_AFTER = 8, 4
pytestmark = pytest.mark.slow  # every test here reads subprocess training runs (~45 s CPU for the first three)


def _env(cache: pathlib.Path) -> dict:
    # A persistent compilation cache shared by the three runs: only the first compiles.
    return subprocess_env(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                          JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


def _tiny(workdir, steps, env, hold_after=None, kill_in_save=None, task="imc") -> subprocess.Popen:
    cmd = [sys.executable, str(HERE / "tiny.py"), "--workdir", str(workdir), "--steps", str(steps), "--task", task]
    if hold_after is not None:
        cmd += ["--hold_after", str(hold_after)]
    if kill_in_save is not None:
        cmd += ["--kill_in_save", str(kill_in_save)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _state_tree(workdir: pathlib.Path, step: int):
    return ocp.StandardCheckpointer().restore((workdir / "checkpoints" / str(step) / "state").absolute())


def _train_losses(workdir):
    return [(r["step"], r["split"], r["loss"]) for r in read_jsonl(workdir / "metrics.jsonl")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run of STEPS steps, and a run SIGKILLed after checkpoint KILL_AFTER then restarted."""
    root = tmp_path_factory.mktemp("loop")
    env = _env(root / "cache")
    killed = _tiny(root / "killed", STEPS, env, hold_after=KILL_AFTER)
    watchdog = threading.Timer(400, killed.kill)
    watchdog.start()
    seen = []
    for line in killed.stdout:
        seen.append(line.strip())
        if line.strip() == f"CHECKPOINT {KILL_AFTER}":
            os.kill(killed.pid, signal.SIGKILL)
            break
    killed.wait()
    watchdog.cancel()
    assert killed.returncode == -signal.SIGKILL, (seen, killed.stderr.read()[-3000:])
    checkpoints_at_kill = sorted(int(p.name) for p in (root / "killed" / "checkpoints").iterdir() if p.name.isdigit())
    resumed = _tiny(root / "killed", STEPS, env)
    out, err = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, err[-3000:]
    plain = _tiny(root / "plain", STEPS, env)
    plain_out, err = plain.communicate(timeout=400)
    assert plain.returncode == 0, err[-3000:]
    return {"root": root, "checkpoints_at_kill": checkpoints_at_kill, "resumed_out": out, "plain_out": plain_out}


def test_killed_run_resumes_from_its_last_checkpoint(runs):
    assert runs["checkpoints_at_kill"] == [2, 4]
    assert f"resuming {runs['root'] / 'killed'} from step {KILL_AFTER}" in runs["resumed_out"]


def test_resumed_run_ends_with_the_same_state_as_an_uninterrupted_one(runs):
    a, b = _state_tree(runs["root"] / "killed", STEPS), _state_tree(runs["root"] / "plain", STEPS)
    assert int(a["step"]) == STEPS
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(np.testing.assert_array_equal, a, b)  # params, batch stats, Adam moments, plateau: bit-exact


def test_resumed_run_logs_the_same_losses(runs):
    killed, plain = _train_losses(runs["root"] / "killed"), _train_losses(runs["root"] / "plain")
    assert killed == plain and len(plain) == STEPS + STEPS // 2  # one train line per step, val every 2


def test_run_writes_tensorboard_summary_and_config_files(runs):
    plain = runs["root"] / "plain"
    (event_file,) = (plain / "tensorboard" / "train").iterdir()
    steps = [s for s, tag, _ in read_scalars(event_file) if tag == "loss"]
    assert steps == list(range(1, STEPS + 1))
    summary = json.loads((plain / "summary.json").read_text())
    assert summary["steps"] == STEPS and summary["val"]["loss"] > 0
    assert "HL1/top1" in runs["plain_out"]  # the final table


def test_rerunning_a_finished_run_trains_nothing(runs):
    proc = _tiny(runs["root"] / "plain", STEPS, _env(runs["root"] / "cache"))
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 0, err[-3000:]
    assert f"from step {STEPS}" in out and "CHECKPOINT" not in out


@pytest.fixture(scope="module", params=["imc", "loc"])
def killed_in_save(request, runs):
    """A run SIGKILLed from inside the save of checkpoint KILL_AFTER, then restarted; and (localisation) an
    uninterrupted run to compare with (IMC compares with ``runs``' plain run)."""
    task = request.param
    root = runs["root"] / f"in_save_{task}"
    env = _env(runs["root"] / "cache")
    killed = _tiny(root / "killed", STEPS, env, kill_in_save=KILL_AFTER, task=task)
    out, err = killed.communicate(timeout=400)
    assert killed.returncode == -signal.SIGKILL and f"KILLED IN SAVE {KILL_AFTER}" in out, err[-3000:]
    visible = sorted(int(p.name) for p in (root / "killed" / "checkpoints").iterdir() if p.name.isdigit())
    leftovers = [p.name for p in (root / "killed" / "checkpoints").iterdir() if not p.name.isdigit()]
    resumed = _tiny(root / "killed", STEPS, env, task=task)
    resumed_out, err = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, err[-3000:]
    if task == "imc":
        plain = runs["root"] / "plain"
    else:
        plain = root / "plain"
        proc = _tiny(plain, STEPS, env, task=task)
        _, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err[-3000:]
    return {"killed": root / "killed", "plain": plain, "visible": visible, "leftovers": leftovers,
            "resumed_out": resumed_out}


def test_kill_during_a_checkpoint_save_leaves_no_visible_step(killed_in_save):
    assert killed_in_save["visible"] == [KILL_AFTER - 2]  # the half-written step is not a checkpoint
    assert killed_in_save["leftovers"], "expected the interrupted save's temporary directory"


def test_run_killed_during_a_save_resumes_to_the_uninterrupted_state(killed_in_save):
    r = killed_in_save
    assert f"from step {KILL_AFTER - 2}" in r["resumed_out"]
    a, b = _state_tree(r["killed"], STEPS), _state_tree(r["plain"], STEPS)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert _train_losses(r["killed"]) == _train_losses(r["plain"])
