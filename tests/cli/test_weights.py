"""``mantra weights``: list, add (right and wrong file), fetch (licence by flag or at a terminal prompt, with
its progress bar), no consent, unreachable host (loopback servers only, no internet)."""

import re
import sys

import pytest

from mantra_jax import cli
from mantra_jax.io import pretrained
from tests.conftest import use_test_registry


@pytest.fixture
def reg(tmp_path, monkeypatch):
    """A test-only registry (entry ``tiny``, URL on a closed loopback port); returns (good file, cache)."""
    good = tmp_path / "tiny.h5"
    good.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 10)
    return good, use_test_registry(tmp_path, monkeypatch, good, licence="test licence line")


def test_weights_add_then_list_shows_it_cached(reg, capsys):
    good, cache = reg
    assert cli.main(["weights", "add", "tiny", str(good)]) == cli.EXIT_OK
    assert (cache / "tiny.h5").read_bytes() == good.read_bytes()
    assert cli.main(["weights", "list"]) == cli.EXIT_OK
    assert str(cache / "tiny.h5") in capsys.readouterr().out


def test_weights_add_wrong_file_exits_2_naming_both_ids(reg, tmp_path, capsys):
    good, cache = reg
    wrong = tmp_path / "wrong.h5"
    wrong.write_bytes(b"not the weights")
    assert cli.main(["weights", "add", "tiny", str(wrong)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and pretrained.blob_id(wrong) in err[0] and pretrained.blob_id(good) in err[0]
    assert not (cache / "tiny.h5").exists()


def test_weights_fetch_without_consent_and_no_terminal_refuses(reg, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    assert cli.main(["weights", "fetch", "tiny"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "test licence line" in err and "--accept-licence" in err.strip().splitlines()[-1]


def test_weights_fetch_from_unreachable_host_is_one_line_exit_2(reg, capsys):
    assert cli.main(["weights", "fetch", "tiny", "--accept-licence", "--timeout", "5"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mantra weights: error: cannot download http://127.0.0.1:1/tiny.h5")


def test_weights_fetch_with_accept_licence_downloads_verifies_and_lists(weights_server, tmp_path, capsys):
    assert cli.main(["weights", "fetch", "synthetic", "--accept-licence", "--no-progress"]) == cli.EXIT_OK
    assert (tmp_path / "cache" / "synthetic.h5").read_bytes() == weights_server.content
    assert "test only" in capsys.readouterr().err  # the licence is shown even when accepted by flag
    assert cli.main(["weights", "list"]) == cli.EXIT_OK
    assert str(tmp_path / "cache" / "synthetic.h5") in capsys.readouterr().out


def _on_a_terminal(answer: bytes, env: dict) -> tuple[int, str]:
    """Runs ``mantra weights fetch synthetic`` with stdin/stdout/stderr on a pseudo-terminal, answers the
    prompt with ``answer`` once it appears; returns (exit code, everything the terminal showed)."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    from tests.conftest import subprocess_env

    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 24 x 100 terminal
    proc = subprocess.Popen([sys.executable, "-m", "mantra_jax.cli", "weights", "fetch", "synthetic"],
                            stdin=slave, stdout=slave, stderr=slave, env=subprocess_env(**env), close_fds=True)
    os.close(slave)
    shown, answered, deadline = b"", False, time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if not answered and b"[y/N]" in shown:
                os.write(master, answer)
                answered = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=60), shown.decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_weights_fetch_on_a_terminal_asks_then_shows_size_and_eta(weights_server, tmp_path):
    env = {"MANTRA_WEIGHTS_REGISTRY": str(tmp_path / "registry.json"), "MANTRA_WEIGHTS_DIR": str(tmp_path / "cache")}
    code, shown = _on_a_terminal(b"n\n", env)
    assert code == cli.EXIT_USAGE and "licence not accepted; nothing was downloaded" in shown
    assert weights_server.ranges == [] and not (tmp_path / "cache" / "synthetic.h5").exists()
    code, shown = _on_a_terminal(b"y\n", env)
    assert code == cli.EXIT_OK and "test only" in shown, shown
    assert (tmp_path / "cache" / "synthetic.h5").read_bytes() == weights_server.content
    # tqdm's bar on the terminal: percentage, bytes done / total (1024-based units) and elapsed<remaining
    assert re.search(r"100%\|.*\| *100k/100k \[\d\d:\d\d<\d\d:\d\d", shown), repr(shown)
