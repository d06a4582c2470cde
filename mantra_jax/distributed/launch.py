"""A local launcher: N processes of one command on this machine, joined by JAX's distributed runtime.

    python -m mantra_jax.distributed.launch -n 2 --devices-per-process 4 -- \
        python experiments/imc385.py --workdir=runs/imc2

``launch(command, num_processes=N, devices_per_process=D)`` starts N copies of ``command``, each with the
environment ``mantra_jax.distributed.runtime`` reads (a coordinator on a free loopback port, its process id,
the process count, the runtime's timeouts) and, when D is given, D simulated CPU devices
(``--xla_force_host_platform_device_count``). Each child runs in its own process group (so its own
children, e.g. grain workers, are reached too) and is killed if the launcher dies (Linux: parent-death
signal). Every line a child writes goes to the launcher's stdout / stderr prefixed with ``[p<index>] ``.

Supervision: when a child exits with a non-zero status (or is killed by a signal), one line names it on
stderr, the other children get SIGTERM, then SIGKILL after ``grace_s`` seconds, and the launcher returns
that child's status (128 + the signal number for a signal). SIGINT, SIGTERM and SIGHUP sent to the launcher
are forwarded to every child; children still running ``grace_s`` seconds later, or when a second signal
comes, are killed (JAX's runtime takes SIGTERM as a preemption notice and goes on). No child outlives
``launch``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Mapping, Sequence

from mantra_jax.distributed.runtime import (ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID, RuntimeSettings)

GRACE_S = 10.0  # seconds between SIGTERM and SIGKILL when stopping children
POLL_S = 0.05
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
DEVICE_FLAG = "--xla_force_host_platform_device_count"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def child_env(base: Mapping[str, str], *, index: int, num_processes: int, coordinator: str,
              settings: RuntimeSettings, devices_per_process: int | None) -> dict[str, str]:
    """The environment of child ``index`` (see the module docstring)."""
    env = {**base, ENV_COORDINATOR: coordinator, ENV_NUM_PROCESSES: str(num_processes),
           ENV_PROCESS_ID: str(index), **settings.to_env()}
    if devices_per_process is not None:
        kept = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(DEVICE_FLAG)]
        env["XLA_FLAGS"] = " ".join(kept + [f"{DEVICE_FLAG}={int(devices_per_process)}"])
    return env


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _pump(stream: IO[bytes], out: IO[str], label: str, lock: threading.Lock) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        with lock:
            with contextlib.suppress(OSError, ValueError):
                out.write(f"{label}{line}\n")
                out.flush()
    stream.close()


def describe_status(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class _Children:
    def __init__(self, procs: list[subprocess.Popen]):
        self.procs = procs

    def signal_all(self, sig: int) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, sig)

    def stop(self, grace_s: float) -> None:
        """SIGTERM to the children still running, SIGKILL after ``grace_s``, then reaps them all (and
        whatever is left of their process groups)."""
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while any(p.poll() is None for p in self.procs) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        self.kill()

    def kill(self) -> None:
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)  # the group too: a child's own children
            p.wait()


def launch(command: Sequence[str], *, num_processes: int, devices_per_process: int | None = None,
           settings: RuntimeSettings = RuntimeSettings(), port: int | None = None, grace_s: float = GRACE_S,
           env: Mapping[str, str] | None = None, stdout: IO[str] | None = None,
           stderr: IO[str] | None = None) -> int:
    """Runs ``command`` in ``num_processes`` processes (see the module docstring); returns the exit status:
    0 when all exited 0, else the status of the first that failed."""
    if not command:
        raise ValueError("no command to launch")
    if num_processes < 1 or (devices_per_process is not None and devices_per_process < 1):
        raise ValueError(f"need at least 1 process and 1 device per process, got {num_processes}, "
                         f"{devices_per_process}")
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    coordinator = f"127.0.0.1:{port or free_port()}"
    base = dict(os.environ if env is None else env)
    lock = threading.Lock()
    procs: list[subprocess.Popen] = []
    children = _Children(procs)
    pumps: list[threading.Thread] = []
    received: list[tuple[int, float]] = []  # (signal, when)

    def forward(signum: int, _frame: object) -> None:
        received.append((signum, time.monotonic()))
        children.signal_all(signal.SIGKILL if len(received) > 1 else signum)

    on_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, forward) for s in FORWARDED} if on_main else {}
    try:
        for index in range(num_processes):
            p = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_parent,
                                 env=child_env(base, index=index, num_processes=num_processes,
                                               coordinator=coordinator, settings=settings,
                                               devices_per_process=devices_per_process))
            procs.append(p)
            for stream, out in ((p.stdout, stdout), (p.stderr, stderr)):
                t = threading.Thread(target=_pump, args=(stream, out, f"[p{index}] ", lock), daemon=True)
                t.start()
                pumps.append(t)
        status = 0
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                index, code = failed[0]
                others = sum(c is None for c in codes)
                with lock:
                    print(f"launch: process {index} {describe_status(code)}"
                          + (f"; stopping the other {others}" if others else ""), file=stderr, flush=True)
                children.stop(grace_s)
                status = code if code > 0 else 128 - code
                break
            if all(c == 0 for c in codes):
                break
            if received and time.monotonic() - received[0][1] > grace_s:  # a signal forwarded, not obeyed
                children.kill()  # (JAX's runtime takes SIGTERM as a preemption notice and keeps running)
            time.sleep(POLL_S)
    finally:
        children.kill()
        for t in pumps:
            t.join(timeout=5)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received and status == 0:
        status = 128 + received[0][0]
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mantra_jax.distributed.launch",
        description="Run a command in N local processes joined by JAX's distributed runtime.")
    parser.add_argument("-n", "--num-processes", type=int, required=True, help="processes to start")
    parser.add_argument("--devices-per-process", type=int, default=None,
                        help="simulated CPU devices per process (--xla_force_host_platform_device_count)")
    parser.add_argument("--port", type=int, default=None, help="coordinator port on 127.0.0.1 (default: a free one)")
    defaults = RuntimeSettings()
    parser.add_argument("--init-timeout", type=int, default=defaults.init_timeout_s,
                        help="seconds a process waits for the coordinator")
    parser.add_argument("--heartbeat-timeout", type=int, default=defaults.heartbeat_timeout_s,
                        help="seconds without a heartbeat after which a process counts as dead")
    parser.add_argument("--shutdown-timeout", type=int, default=defaults.shutdown_timeout_s,
                        help="seconds a finishing process waits for the others")
    parser.add_argument("--grace", type=float, default=GRACE_S,
                        help="seconds children get to exit after SIGTERM before SIGKILL")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    try:
        settings = RuntimeSettings(args.init_timeout, args.heartbeat_timeout, args.shutdown_timeout)
        return launch(command, num_processes=args.num_processes, devices_per_process=args.devices_per_process,
                      settings=settings, port=args.port, grace_s=args.grace)
    except (ValueError, OSError) as e:
        print(f"launch: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
