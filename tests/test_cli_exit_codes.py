"""The `mantra` command's exit-status contract, pinned: scripts and schedulers depend on the numbers."""

import os
import signal
import subprocess
import sys
import time

from mantra_jax import cli
from tests.conftest import REPO


def test_exit_code_numbers_are_pinned():
    assert (cli.EXIT_OK, cli.EXIT_INPUTS_FAILED, cli.EXIT_USAGE, cli.EXIT_INTERNAL,
            cli.EXIT_INTERRUPTED) == (0, 1, 2, 3, 130)  # 130 = 128 + SIGINT, the shell's convention


def test_keyboard_interrupt_in_a_command_exits_130_without_traceback(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "cmd_info", interrupted)
    assert cli.main(["info", "x"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


# A command that blocks until signalled; the real SIGINT path: Python's handler raises KeyboardInterrupt in
# the main thread, inside cli.main.
BLOCKING = """
import sys, time
from mantra_jax import cli
def wait(args):
    print("READY", flush=True)
    time.sleep(120)
    return 0
cli.cmd_info = wait
sys.exit(cli.main(["info", "x"]))
"""


def test_sigint_while_running_exits_130_with_one_line():
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", BLOCKING], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "interrupted" in err
