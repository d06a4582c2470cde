"""Compilation: JAX's persistent compilation cache, and executables compiled once per input signature with
their compile time counted apart from the compute time.

Persistent cache. XLA compiles the network anew in every process (several seconds per image shape on
CPU). ``enable(folder)`` turns on JAX's persistent compilation cache in that folder, so a later process
that needs the same program (same model shape, image shape, JAX version and machine) loads it instead.
The ``mantra`` command enables it by default in ``default_dir()`` (``$XDG_CACHE_HOME/mantra_jax/xla``,
i.e. ``~/.cache/mantra_jax/xla``); ``--compile-cache DIR`` or the ``MANTRA_COMPILE_CACHE`` environment
variable move it, and the value ``off`` disables it. Entries are keyed by JAX on the program and the
compile options, so a stale entry is never used for another program; deleting the folder is always safe.

Compile accounting. ``ShapeCompiled(jax.jit(f))`` compiles ``f`` ahead of time once per argument signature
(pytree structure, shapes and dtypes) and adds each compile's wall time to ``STATS`` (process-wide), so a
caller can report compile seconds (including persistent-cache loads) separately from compute seconds:
snapshot ``STATS.count`` / ``STATS.seconds`` before and after. What JAX itself reports about the persistent
cache (its ``jax.monitoring`` events: an executable loaded from the cache, one written to it) is counted in
``CACHE`` once ``listen()`` (called by ``enable``) has run: a process that found all its programs in the
cache shows ``CACHE.hits`` equal to its compilations and no writes.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from typing import Any, Callable, Hashable

import numpy as np

ENV_VAR = "MANTRA_COMPILE_CACHE"
OFF_VALUES = frozenset({"off", "none", "no", "false", "0"})


def default_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/mantra_jax/xla``, or ``~/.cache/mantra_jax/xla`` when XDG_CACHE_HOME is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "mantra_jax" / "xla"


def resolve(option: str | None = None) -> pathlib.Path | None:
    """The cache folder to use: ``option`` if given, else ``$MANTRA_COMPILE_CACHE`` if set and non-empty,
    else ``default_dir()``; None when the chosen value is ``off`` (or none/no/false/0, any case)."""
    value = option if option is not None else (os.environ.get(ENV_VAR) or None)
    if value is None:
        return default_dir()
    if value.strip().lower() in OFF_VALUES:
        return None
    return pathlib.Path(os.path.expanduser(value))


def enable(folder: pathlib.Path | str | None, *, min_compile_seconds: float = 1.0) -> pathlib.Path | None:
    """Turns JAX's persistent compilation cache on in ``folder`` (created if needed), or off for None.

    Programs that compiled in less than ``min_compile_seconds`` are not stored (JAX's own threshold).
    Returns the folder in use. Raises OSError when the folder cannot be created or written.
    """
    import jax

    if folder is None:
        jax.config.update("jax_compilation_cache_dir", None)
        return None
    path = pathlib.Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise OSError(f"compile cache folder {path} is not writable")
    jax.config.update("jax_compilation_cache_dir", str(path))
    if MIN_SECONDS_ENV not in os.environ:  # JAX's own variable, when set, is obeyed
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    listen()
    return path


MIN_SECONDS_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"
HIT_EVENT, WRITE_EVENT = "/jax/compilation_cache/cache_hits", "/jax/compilation_cache/cache_misses"


@dataclasses.dataclass
class CacheEvents:
    """Persistent-cache events JAX reported in this process: executables loaded (``hits``) and compiled then
    written to the cache (``writes``; JAX names the event ``cache_misses``)."""

    hits: int = 0
    writes: int = 0
    listening: bool = False


CACHE = CacheEvents()


def _on_event(event: str, **kwargs: Any) -> None:
    if event == HIT_EVENT:
        CACHE.hits += 1
    elif event == WRITE_EVENT:
        CACHE.writes += 1


def listen() -> None:
    """Counts JAX's persistent-cache events into ``CACHE`` (once per process)."""
    if not CACHE.listening:
        from jax import monitoring

        monitoring.register_event_listener(_on_event)
        CACHE.listening = True


@dataclasses.dataclass
class CompileStats:
    """Executables compiled (or loaded from the persistent cache) so far, and their total wall seconds."""

    count: int = 0
    seconds: float = 0.0


STATS = CompileStats()


def _signature(args: tuple[Any, ...]) -> Hashable:
    import jax

    leaves, tree = jax.tree_util.tree_flatten(args)
    return tree, tuple((tuple(np.shape(a)), str(getattr(a, "dtype", type(a).__name__))) for a in leaves)


class ShapeCompiled:
    """A jitted function compiled ahead of time once per argument signature, compile time added to ``STATS``.

    ``jitted`` stays available (e.g. for ``.lower(...)`` in cost analysis); ``len()`` is the number of
    signatures compiled so far.
    """

    def __init__(self, jitted: Any) -> None:
        self.jitted = jitted
        self._compiled: dict[Hashable, Callable[..., Any]] = {}

    def __call__(self, *args: Any) -> Any:
        key = _signature(args)
        fn = self._compiled.get(key)
        if fn is None:
            t0 = time.perf_counter()
            fn = self.jitted.lower(*args).compile()
            STATS.count += 1
            STATS.seconds += time.perf_counter() - t0
            self._compiled[key] = fn
        return fn(*args)

    def __len__(self) -> int:
        return len(self._compiled)


__all__ = ["CACHE", "ENV_VAR", "STATS", "CacheEvents", "CompileStats", "ShapeCompiled", "default_dir", "enable",
           "listen", "resolve"]
