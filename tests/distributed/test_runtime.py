"""Joining the distributed runtime: settings from the environment, and a coordinator nobody answers."""

import subprocess
import sys
import time

import pytest

from mantra_jax.distributed import runtime
from mantra_jax.distributed.launch import free_port
from tests.conftest import REPO
from tests.distributed.helpers import assert_none_left, launcher_env


def test_settings_are_read_from_the_environment_and_checked():
    assert runtime.RuntimeSettings.from_env({}) == runtime.RuntimeSettings()
    assert runtime.RuntimeSettings.from_env({runtime.ENV_HEARTBEAT_TIMEOUT: "9"}).heartbeat_timeout_s == 9
    with pytest.raises(runtime.DistributedInitError, match="not a whole number"):
        runtime.RuntimeSettings.from_env({runtime.ENV_INIT_TIMEOUT: "soon"})
    with pytest.raises(ValueError, match="positive"):
        runtime.RuntimeSettings(init_timeout_s=0)


def test_waiting_for_a_silent_coordinator_gives_up_after_the_timeout():
    t0 = time.monotonic()
    with pytest.raises(runtime.DistributedInitError, match=r"no coordinator answered at 127\.0\.0\.1:\d+ within 1 s"):
        runtime.wait_for_coordinator(f"127.0.0.1:{free_port()}", 1)
    assert time.monotonic() - t0 < 3
    with pytest.raises(runtime.DistributedInitError, match="not host:port"):
        runtime.wait_for_coordinator("localhost", 1)


def test_an_experiment_whose_coordinator_nobody_answers_exits_2_with_one_line(tmp_path):
    # process 1 of 2, told of a coordinator on a port where nothing listens, init timeout 3 s
    env, tag = launcher_env(**{runtime.ENV_COORDINATOR: f"127.0.0.1:{free_port()}", runtime.ENV_NUM_PROCESSES: "2",
                               runtime.ENV_PROCESS_ID: "1", runtime.ENV_INIT_TIMEOUT: "3"})
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "experiments/imc385.py", f"--workdir={tmp_path / 'run'}"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and "no coordinator answered" in proc.stderr
    assert took < 3 + 30  # the timeout plus the start-up of Python and JAX
    assert not (tmp_path / "run").exists()  # nothing written before the runtime is joined
    assert_none_left(tag)
