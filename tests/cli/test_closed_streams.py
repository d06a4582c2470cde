"""Issue 26 item 6: ``mantra`` with a closed stderr works (the exit status tells the result); with a closed
stdout, a command whose output is stdout (``info``) exits non-zero instead of losing it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.cli.test_hostile_inputs import _png, ckpt  # noqa: F401


def _mantra(*args, close_fd):
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    other = subprocess.PIPE
    command = ["bash", "-c", f'exec "$@" {close_fd}>&-', "mantra", sys.executable, "-m", "mantra_jax.cli"]
    return subprocess.run(command + [str(a) for a in args], env=env, timeout=600, stdout=other, stderr=other)


def test_detect_with_stderr_closed_runs_and_exits_0(ckpt, tmp_path):  # noqa: F811
    _png(tmp_path / "a.png")
    r = _mantra("detect", tmp_path / "a.png", "-c", ckpt, "-o", tmp_path / "out", close_fd=2)
    assert r.returncode == 0, r.stdout
    assert b"error" not in r.stdout
    assert (tmp_path / "out" / "summary.json").is_file() and (tmp_path / "out" / "a.npy").is_file()


def test_detect_with_stderr_closed_still_signals_a_bad_input_by_its_exit_status(ckpt, tmp_path):  # noqa: F811
    r = _mantra("detect", tmp_path / "missing.png", "-c", ckpt, "-o", tmp_path / "out", close_fd=2)
    assert r.returncode != 0 and b"Traceback" not in r.stdout and b"error" not in r.stdout


def test_info_with_stdout_closed_exits_2_saying_why(ckpt):  # noqa: F811
    r = _mantra("info", ckpt, close_fd=1)
    assert r.returncode == 2
    assert r.stderr.decode().strip().splitlines() == [
        "mantra info: error: standard output is closed: nowhere to write the requested output"]
