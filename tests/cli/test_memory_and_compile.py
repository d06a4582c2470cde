"""`mantra detect --memory`: bad values, the budget held by a real run; detect's compile report, bounded shapes
and the persistent compilation cache across processes (as JAX reports it)."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from mantra_jax import cli
from mantra_jax.infer.memory import GIB, MIB, parse_bytes
from tests.conftest import subprocess_env


def _run(args, capsys):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _png(path, h, w, seed):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("value", ["lots", "-2G", "0", "2X"])
def test_a_bad_memory_value_is_one_line_and_exit_2(value, tiny_ckpt, tmp_path, capsys):
    img = _png(tmp_path / "a.png", 24, 32, 0)
    with pytest.raises(SystemExit) as e:
        cli.main(["detect", str(img), "-c", str(tiny_ckpt), "-o", str(tmp_path / "o"), "--memory", value])
    err = capsys.readouterr().err
    assert e.value.code == cli.EXIT_USAGE and len(err.strip().splitlines()) == 1 and "--memory" in err
    assert not (tmp_path / "o" / "summary.json").exists()


def test_a_memory_budget_below_the_process_itself_is_one_line_and_exit_2(tiny_ckpt, tmp_path, capsys):
    img = _png(tmp_path / "a.png", 24, 32, 0)
    code, _, err = _run(["detect", img, "-c", tiny_ckpt, "-o", tmp_path / "o", "--memory", "64M"], capsys)
    assert code == cli.EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert "--memory 64 MiB is below" in err and not list((tmp_path / "o").glob("a*"))


# Three sizes, all axes >= tile + 2 x the tiny model's LADN halo (16 + 48): with --tile 16 and bounded shapes
# (detect's default) every pass-1 region is 44 x 44 and every pass-2 region 64 x 64.
SIZES = ((65, 71), (67, 77), (73, 69))


@pytest.mark.slow  # ~20-50 s: three sizes through both tiled passes
def test_detect_reports_compile_seconds_apart_and_compiles_one_program_per_pass_for_mixed_sizes(
        tiny_ckpt, tmp_path, capsys, fresh_programs):
    for k, (h, w) in enumerate(SIZES):
        _png(tmp_path / f"i{k}.png", h, w, 10 + k)
    out = tmp_path / "o"
    code, _, err = _run(["detect", *(tmp_path / f"i{k}.png" for k in range(3)), "-c", tiny_ckpt, "-o", out,
                         "--tile", "16", "--compile-cache", "off"], capsys)
    assert code == cli.EXIT_OK and "compilation(s) in" in err
    doc = json.loads((out / "summary.json").read_text())
    run = doc["run"]
    assert run["bounded_shapes"] is True and run["compile_cache"] is None
    assert 1 <= run["compilations"] <= 2  # one pass-1 and one pass-2 shape for all three sizes
    assert run["compile_seconds"] > 0 and run["compute_seconds"] > 0
    assert run["cache_hits"] == 0 and run["cache_writes"] == 0  # the cache is off
    assert all(r["tiled"] for r in doc["images"])


DETECT = "import sys; from mantra_jax import cli; sys.exit(cli.main(sys.argv[1:]))"


def test_detect_reports_the_process_start_apart_from_compile_and_compute(tiny_ckpt, tmp_path):
    img = _png(tmp_path / "a.png", 24, 32, 0)
    # the child sleeps a second before it imports anything: the start it reports must include that second,
    # so it is the process's age, not the time since some import
    child = ("import sys, time; time.sleep(1.0); t = time.monotonic(); from mantra_jax import cli; "
             "code = cli.main(sys.argv[1:]); print(f'after the sleep {time.monotonic() - t:.3f}'); sys.exit(code)")
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", child, "detect", str(img), "-c", str(tiny_ckpt), "-o",
                           str(tmp_path / "o"), "--compile-cache", "off", "--no-progress", "--no-report"],
                          env=subprocess_env(), capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    run = json.loads((tmp_path / "o" / "summary.json").read_text())["run"]
    after_sleep = float(done.stdout.split("after the sleep")[1])
    since_start = run["compile_seconds"] + run["compute_seconds"]  # from the snapshot to the summary
    # the sleep, plus the imports and weight loading after it (the child's own clock, up to the summary's
    # writing and rounding, well under the half second of slack), and no more than its life as seen from here
    assert 0.5 + after_sleep - since_start < run["start_seconds"] <= wall - since_start + 0.05
    assert f"start {run['start_seconds']} s" in done.stderr


@pytest.mark.slow  # ~40-200 s: two fresh processes compiling / loading both passes
def test_a_second_detect_process_loads_every_program_from_the_compile_cache(tiny_ckpt, tmp_path):
    for k, (h, w) in enumerate(SIZES):
        _png(tmp_path / f"i{k}.png", h, w, 10 + k)
    # store every program, however fast it compiled (JAX's own threshold variable, obeyed by compile_cache.enable)
    env = subprocess_env(JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    runs = []
    for n in range(2):
        out = tmp_path / f"o{n}"
        done = subprocess.run([sys.executable, "-c", DETECT, "detect", str(tmp_path), "-c", str(tiny_ckpt), "-o",
                               str(out), "--tile", "16", "--compile-cache", str(tmp_path / "xla")],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads((out / "summary.json").read_text())["run"])
    first, second = runs
    assert 1 <= first["compilations"] <= 2 and first["cache_hits"] == 0
    assert first["cache_writes"] >= first["compilations"]  # JAX wrote each program it compiled
    # the second process compiled nothing: JAX loaded every program it asked for from the cache
    assert second["compilations"] == first["compilations"] and second["cache_writes"] == 0
    assert second["cache_hits"] >= second["compilations"]


@pytest.mark.slow  # ~1-3 min: the Ptrain4-shaped reference weights, compiled as users get them, tiled
def test_detect_keeps_peak_rss_under_a_small_memory_budget(reference_path, tmp_path):
    weights = reference_path("ptrain4like_weights.h5")
    img = _png(tmp_path / "photo.png", 360, 480, 1)
    budget = "1.25G"
    # what users run: XLA's default optimisation (the suite's LLVM -O0, tests/conftest.py, is left out)
    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_backend_optimization_level" not in f)
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", DETECT, "detect", str(img), "-c", str(weights), "-o",
                                 str(tmp_path / "o"), "--memory", budget, "--compile-cache", "off"],
                                env=subprocess_env(XLA_FLAGS=flags), stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (ru_maxrss in KiB on Linux)
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, (tmp_path / "stderr.txt").read_text()
    peak = usage.ru_maxrss * 1024
    assert peak < parse_bytes(budget), f"peak {peak / MIB:.0f} MiB"
    doc = json.loads((tmp_path / "o" / "summary.json").read_text())
    # whole, the image would need about 2 GiB (infer.memory's estimate): it was tiled
    assert doc["images"][0]["tiled"] is True and doc["run"]["memory"] == parse_bytes(budget)
    assert peak > 0.5 * GIB  # the measurement is the real process's (Python, JAX, the weights)
