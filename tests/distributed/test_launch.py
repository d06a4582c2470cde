"""The local launcher with plain Python children (no JAX): labels, environment, failure, signals, clean-up."""

import signal
import sys
import time

from mantra_jax.distributed import runtime
from mantra_jax.distributed.launch import child_env
from tests.distributed.helpers import assert_none_left, run, start

PY = sys.executable


def test_children_get_their_place_and_devices_and_their_lines_are_labelled():
    show = ("import os; print(os.environ['MANTRA_PROCESS_ID'], os.environ['MANTRA_NUM_PROCESSES'], "
            "os.environ['MANTRA_COORDINATOR_ADDRESS'].startswith('127.0.0.1:'), os.environ['XLA_FLAGS'], "
            "os.environ['MANTRA_HEARTBEAT_TIMEOUT_S']); import sys; print('err', file=sys.stderr)")
    proc = run(["-n", "3", "--devices-per-process", "4", "--heartbeat-timeout", "7"], [PY, "-c", show],
               timeout=60, XLA_FLAGS="--xla_force_host_platform_device_count=2 --foo")
    assert proc.returncode == 0, proc.stderr
    lines = sorted(proc.stdout.splitlines())
    assert lines == [f"[p{i}] {i} 3 True --foo --xla_force_host_platform_device_count=4 7" for i in range(3)]
    assert sorted(proc.stderr.splitlines()) == ["[p0] err", "[p1] err", "[p2] err"]


def test_a_failing_child_stops_the_others_and_is_named():
    # process 1 exits 3 at once; the others would sleep for 10 minutes
    body = "import os, sys, time; sys.exit(3) if os.environ['MANTRA_PROCESS_ID'] == '1' else time.sleep(600)"
    t0 = time.monotonic()
    proc = run(["-n", "3"], [PY, "-c", body], timeout=60)
    assert proc.returncode == 3 and time.monotonic() - t0 < 30
    assert proc.stderr.splitlines() == ["launch: process 1 exited with status 3; stopping the other 2"]


def test_a_child_killed_by_a_signal_is_named_and_the_status_says_which():
    body = ("import os, signal, time; os.environ['MANTRA_PROCESS_ID'] == '0' and "
            "os.kill(os.getpid(), signal.SIGKILL); time.sleep(600)")
    proc = run(["-n", "2"], [PY, "-c", body], timeout=60)
    assert proc.returncode == 128 + signal.SIGKILL
    assert proc.stderr.splitlines() == ["launch: process 0 was killed by SIGKILL; stopping the other 1"]


def test_sigterm_to_the_launcher_reaches_every_child_and_its_own_children():
    # each child starts a grandchild sleeper, says so, and reports the SIGTERM it gets before exiting 0
    body = ("import signal, subprocess, sys, time; g = subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(600)']); "
            "signal.signal(signal.SIGTERM, lambda *a: (print('got SIGTERM', flush=True), sys.exit(0))); "
            "print('ready', flush=True); time.sleep(600)")
    proc, tag = start(["-n", "2"], [PY, "-c", body])
    ready = 0
    for line in proc.stdout:
        ready += line.endswith("ready\n")
        if ready == 2:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert sorted(out.splitlines()) == ["[p0] got SIGTERM", "[p1] got SIGTERM"], err
    assert proc.returncode == 128 + signal.SIGTERM
    assert_none_left(tag)  # the grandchildren too (their process groups are killed)


def test_children_that_ignore_a_forwarded_sigterm_are_killed_after_the_grace_period():
    # as JAX's runtime does (SIGTERM is its preemption notice)
    body = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)"
    proc, tag = start(["-n", "2", "--grace", "1"], [PY, "-c", body])
    ready = 0
    for line in proc.stdout:
        ready += line.endswith("ready\n")
        if ready == 2:
            break
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 10 and proc.returncode != 0
    assert "was killed by SIGKILL" in err
    assert_none_left(tag)


def test_a_usage_error_is_one_line_and_status_2():
    proc = run(["-n", "0"], [PY, "-c", "pass"], timeout=60)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        "launch: error: need at least 1 process and 1 device per process, got 0, None"]


def test_child_env_is_what_the_runtime_reads():
    settings = runtime.RuntimeSettings(init_timeout_s=5, heartbeat_timeout_s=6, shutdown_timeout_s=7)
    env = child_env({"A": "1"}, index=1, num_processes=2, coordinator="127.0.0.1:1234", settings=settings,
                    devices_per_process=None)
    assert runtime.launched(env) and runtime.RuntimeSettings.from_env(env) == settings
    assert env["A"] == "1" and "XLA_FLAGS" not in env and env[runtime.ENV_PROCESS_ID] == "1"
