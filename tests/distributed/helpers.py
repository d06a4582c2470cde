"""Running commands under the launcher in a subprocess, and checking that none of their processes is left.

Every launch gets a unique ``MANTRA_TEST_TAG`` in its environment; the children (and theirs) inherit it,
so ``leftovers(tag)`` finds any process still alive from that launch by reading ``/proc/<pid>/environ``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
import uuid

from tests.conftest import REPO, subprocess_env

TAG = "MANTRA_TEST_TAG"
LAUNCH = [sys.executable, "-m", "mantra_jax.distributed.launch"]


def leftovers(tag: str, *also: str) -> list[int]:
    """Pids of live processes whose environment holds ``TAG=tag`` and the ``also`` entries ("K=V"),
    zombies excluded."""
    found, needles = [], {f"{TAG}={tag}".encode(), *(a.encode() for a in also)}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needles <= set((entry / "environ").read_bytes().split(b"\0")):
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def assert_none_left(tag: str, wait_s: float = 5.0) -> None:
    deadline = time.monotonic() + wait_s
    while leftovers(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not leftovers(tag), f"processes left behind: {leftovers(tag)}"


def launcher_env(**extra: str) -> tuple[dict[str, str], str]:
    tag = uuid.uuid4().hex
    return subprocess_env(**{TAG: tag, **extra}), tag


def start(args: list[str], command: list[str], **extra: str) -> tuple[subprocess.Popen, str]:
    """The launcher with ``args`` running ``command``, started (stdout, stderr piped as text)."""
    env, tag = launcher_env(**extra)
    proc = subprocess.Popen(LAUNCH + args + ["--"] + command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return proc, tag


def run(args: list[str], command: list[str], timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    """The launcher run to its end; asserts that it left no process behind."""
    proc, tag = start(args, command, **extra)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_none_left(tag)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
