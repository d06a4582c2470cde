"""Persistent compilation cache settings and per-signature compile accounting."""

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
    script = ("import sys, jax, jax.numpy as jnp\n"
              "from mantra_jax import compile_cache as cc\n"
              "cc.enable(sys.argv[1], min_compile_seconds=0)\n"
              "f = cc.ShapeCompiled(jax.jit(lambda x: jnp.tanh(x) @ x.T))\n"
              "f(jnp.ones((32, 32)))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    cache = tmp_path / "xla"
    subprocess.run([sys.executable, "-c", script, str(cache)], check=True, env=env)
    entries = sorted(p.name for p in cache.iterdir())
    assert any("lambda" in e for e in entries)
    subprocess.run([sys.executable, "-c", script, str(cache)], check=True, env=env)
    assert sorted(p.name for p in cache.iterdir()) == entries  # reused, nothing new written
