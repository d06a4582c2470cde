"""Joining JAX's distributed runtime: the one home of its settings and of the environment the launcher sets.

``RuntimeSettings`` holds the runtime's timeouts (explicit, not JAX's defaults): how long a process waits
for the coordinator (``init_timeout_s``), after how many seconds without a heartbeat a process counts as
dead and the others are stopped by the runtime (``heartbeat_timeout_s``), and how long a finishing process
waits for the others at shutdown (``shutdown_timeout_s``). CPU collectives go over gloo.

The launcher (``mantra_jax.distributed.launch``) gives each child its place through the environment:
``MANTRA_COORDINATOR_ADDRESS`` (host:port), ``MANTRA_NUM_PROCESSES``, ``MANTRA_PROCESS_ID`` and the
settings' ``MANTRA_INIT_TIMEOUT_S`` / ``MANTRA_HEARTBEAT_TIMEOUT_S`` / ``MANTRA_SHUTDOWN_TIMEOUT_S``.
``initialize_from_environment`` joins when those are set; on a cluster (Slurm, TPU VM, Open MPI) JAX itself
detects the rest when ``initialize`` is called with ``None`` fields.

A coordinator nobody answers makes JAX's client abort the whole process (a C++ fatal error) once its
deadline passes; so every process other than 0 first checks, for at most ``init_timeout_s``, that the
coordinator's port accepts connections, and raises ``DistributedInitError`` (one line) when it never does.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from typing import Callable, Mapping, TypeVar

T = TypeVar("T")

ENV_COORDINATOR = "MANTRA_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "MANTRA_NUM_PROCESSES"
ENV_PROCESS_ID = "MANTRA_PROCESS_ID"
ENV_INIT_TIMEOUT = "MANTRA_INIT_TIMEOUT_S"
ENV_HEARTBEAT_TIMEOUT = "MANTRA_HEARTBEAT_TIMEOUT_S"
ENV_SHUTDOWN_TIMEOUT = "MANTRA_SHUTDOWN_TIMEOUT_S"
CPU_COLLECTIVES = "gloo"


class DistributedInitError(RuntimeError):
    """The process could not join the distributed runtime (bad settings, coordinator unreachable)."""


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    """Timeouts of the distributed runtime in whole seconds (see the module docstring)."""

    init_timeout_s: int = 120
    heartbeat_timeout_s: int = 30
    shutdown_timeout_s: int = 30

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"RuntimeSettings.{field.name} must be a positive whole number of seconds, "
                                 f"got {value!r}")

    def to_env(self) -> dict[str, str]:
        return {ENV_INIT_TIMEOUT: str(self.init_timeout_s), ENV_HEARTBEAT_TIMEOUT: str(self.heartbeat_timeout_s),
                ENV_SHUTDOWN_TIMEOUT: str(self.shutdown_timeout_s)}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RuntimeSettings":
        """The settings named in ``env``; the defaults for those absent."""
        values = {}
        for name, key in (("init_timeout_s", ENV_INIT_TIMEOUT), ("heartbeat_timeout_s", ENV_HEARTBEAT_TIMEOUT),
                          ("shutdown_timeout_s", ENV_SHUTDOWN_TIMEOUT)):
            if env.get(key):
                values[name] = _env_int(env, key)
        return cls(**values)


def _env_int(env: Mapping[str, str], key: str) -> int:
    try:
        return int(env[key])
    except ValueError:
        raise DistributedInitError(f"{key}={env[key]!r} is not a whole number") from None


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DistributedInitError(f"coordinator address {address!r} is not host:port")
    return host.strip("[]"), int(port)


def wait_for_coordinator(address: str, timeout_s: float) -> None:
    """Returns once ``address`` (host:port) accepts a TCP connection; DistributedInitError after
    ``timeout_s`` seconds of refused or unanswered attempts."""
    host, port = _split_address(address)
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(min(left, 2.0), 0.05)):
                return
        except OSError as e:
            reason = e.strerror or type(e).__name__
        if time.monotonic() + 0.2 >= deadline:
            raise DistributedInitError(f"no coordinator answered at {address} within {timeout_s:g} s ({reason})")
        time.sleep(0.2)


def initialize(coordinator_address: str | None, num_processes: int | None, process_id: int | None,
               settings: RuntimeSettings = RuntimeSettings()) -> None:
    """``jax.distributed.initialize`` with explicit timeouts and gloo CPU collectives; None fields are
    detected by JAX (Slurm, TPU VMs, Open MPI). Must run before JAX's backends are first used."""
    import jax

    if num_processes is not None and not (process_id is not None and 0 <= process_id < num_processes):
        raise DistributedInitError(f"process id {process_id} is not in [0, {num_processes})")
    jax.config.update("jax_cpu_collectives_implementation", CPU_COLLECTIVES)
    if coordinator_address and process_id not in (None, 0):
        wait_for_coordinator(coordinator_address, settings.init_timeout_s)
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                   initialization_timeout=settings.init_timeout_s,
                                   heartbeat_timeout_seconds=settings.heartbeat_timeout_s,
                                   shutdown_timeout_seconds=settings.shutdown_timeout_s)
    except (RuntimeError, ValueError, TypeError) as e:
        text = " ".join(str(e).split()) or type(e).__name__
        raise DistributedInitError(f"cannot join the distributed runtime: {text}") from e


def launched(env: Mapping[str, str] = os.environ) -> bool:
    """Whether ``env`` holds a launcher's process placement (``MANTRA_NUM_PROCESSES``)."""
    return bool(env.get(ENV_NUM_PROCESSES))


def initialize_from_environment(env: Mapping[str, str] = os.environ) -> bool:
    """Joins the runtime described by the launcher's variables in ``env``; False (nothing done) when they
    are absent or the runtime is already up."""
    import jax

    if not launched(env) or jax.distributed.is_initialized():
        return False
    missing = [k for k in (ENV_COORDINATOR, ENV_PROCESS_ID) if not env.get(k)]
    if missing:
        raise DistributedInitError(f"{ENV_NUM_PROCESSES} is set but {', '.join(missing)} not")
    initialize(env[ENV_COORDINATOR], _env_int(env, ENV_NUM_PROCESSES), _env_int(env, ENV_PROCESS_ID),
               RuntimeSettings.from_env(env))
    return True


def barrier(name: str) -> None:
    """Waits until every process has reached the barrier ``name`` (no-op with one process)."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def primary_first(name: str, fn: Callable[[], T]) -> T:
    """``fn()`` in process 0 first, then in the others (e.g. writing a cache they all read); one process:
    just ``fn()``."""
    import jax

    if jax.process_index() == 0:
        result = fn()
        barrier(name)
        return result
    barrier(name)
    return fn()
