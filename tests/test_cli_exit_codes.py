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


def _child_sigint_default() -> None:
    """preexec_fn: the child starts with SIGINT at its default even when this test process inherited it
    ignored (a backgrounded full run), where Python would keep SIG_IGN and the child never exit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_while_running_exits_130_with_one_line():
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", BLOCKING], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=_child_sigint_default)
    try:
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "interrupted" in err


IGNORED_THEN_RESTORED = """
import signal, sys
from mantra_jax.signals import restore_sigint
assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "SIGINT should arrive ignored"
restore_sigint()
try:
    signal.raise_signal(signal.SIGINT)
except KeyboardInterrupt:
    sys.exit(130)
sys.exit(0)
"""


def test_restore_sigint_undoes_an_inherited_sig_ign():
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", IGNORED_THEN_RESTORED], capture_output=True, text=True,
                          env=env, timeout=60,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert proc.returncode == 130, proc.stderr
