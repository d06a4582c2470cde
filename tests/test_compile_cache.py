"""Persistent compilation cache settings and per-signature compile accounting."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from mantra_jax import compile_cache
from mantra_jax.compile_cache import STATS, ShapeCompiled

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_resolve_prefers_the_option_then_the_environment_then_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv(compile_cache.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.resolve() == tmp_path / "xdg" / "mantra_jax" / "xla"
    monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "env"))
    assert compile_cache.resolve() == tmp_path / "env"
    assert compile_cache.resolve(str(tmp_path / "opt")) == tmp_path / "opt"
    assert compile_cache.resolve("OFF") is None
    monkeypatch.setenv(compile_cache.ENV_VAR, "off")
    assert compile_cache.resolve() is None and compile_cache.resolve(str(tmp_path)) == tmp_path


def test_shape_compiled_compiles_once_per_signature_and_counts_the_seconds():
    f = ShapeCompiled(jax.jit(lambda x, y: x * 2 + y))
    count, seconds = STATS.count, STATS.seconds
    a, b = jnp.ones((3, 4)), jnp.ones((5,))
    np.testing.assert_array_equal(np.asarray(f(a, 1.0)), np.full((3, 4), 3.0))
    f(a + 1, 2.0)
    f(b, 1.0)
    f(a.astype(jnp.int32), 1)
    assert len(f) == 3 and STATS.count - count == 3 and STATS.seconds > seconds


def test_enabled_cache_lets_a_second_process_load_instead_of_compiling(tmp_path):
    # what JAX itself reports: its monitoring events for a persistent-cache hit and miss, counted in each
    # process (a process that compiled again would report a miss, whatever it leaves in the folder)
    script = ("import sys, json, jax, jax.numpy as jnp\n"
              "from mantra_jax import compile_cache as cc\n"
              "events = []\n"
              "jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))\n"
              "cc.enable(sys.argv[1], min_compile_seconds=0)\n"
              "f = cc.ShapeCompiled(jax.jit(lambda x: jnp.tanh(x) @ x.T))\n"
              "f(jnp.ones((32, 32)))\n"
              "print(json.dumps({k: events.count('/jax/compilation_cache/' + k) for k in ('cache_hits', 'cache_misses')}))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    cache = tmp_path / "xla"

    def run():
        out = subprocess.run([sys.executable, "-c", script, str(cache)], check=True, env=env, capture_output=True,
                             text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    first = run()  # every program compiled and stored (the lambda and jnp.ones' own small programs)
    assert first["cache_hits"] == 0 and first["cache_misses"] >= 1, first
    assert any("lambda" in p.name for p in cache.iterdir())
    assert run() == {"cache_hits": first["cache_misses"], "cache_misses": 0}  # each loaded, none compiled
