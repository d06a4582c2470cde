"""Peak resident memory and seconds of whole-image and exact tiled inference, each run in a fresh process.

    python experiments/bench_memory.py --sizes 256x256,512x512,1024x768,4000x3000 --max_memory 8G [--memory 2G]
    python experiments/bench_memory.py --calibrate            # the per-pixel costs of infer/memory.py

Every measurement is a child process (``--child MODE ...``) that loads the weights (default: the
Ptrain4-shaped random reference weights, ``$MANTRA_SHARED/reference/ptrain4like_weights.h5``), makes a
synthetic photo (``mantra_jax.perf.synthetic_photo``), runs once with the persistent compile cache off (so
the figures include compiling, the first run's worst case) and prints one JSON line: ``base_mib`` (peak
RSS after imports and weight loading, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``), ``peak_mib`` (the
same after the run), ``seconds`` and ``compile_seconds`` (``mantra_jax.compile_cache.STATS``).

Modes: ``whole`` (``infer.whole.predict``), ``tiled`` (``infer.tiled.predict_tiled`` as ``mantra detect`` runs
it by default: bounded shapes, with the tile and feature store ``infer.memory.model_plan`` picks for the
``--memory`` budget, or ``--tile`` with the features in a file), ``pass1`` / ``pass2`` (one region of
either tiled pass alone, g x g pixels: what ``--calibrate`` fits the per-region-pixel costs on) and ``host``
(``mantra detect``'s per-image host work without the network: reading a PNG, the scores and the three
output files, on a map of the image's size). The table skips whole-image inference where the planner's
estimate (``mantra_jax.infer.memory``) exceeds ``--max_memory`` and says so.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

from absl import flags

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the repository root (see __init__.py)

from experiments.script_main import script_main  # noqa: E402
from mantra_jax.infer.memory import DEFAULT_BUDGET_BYTES, format_bytes, parse_bytes  # noqa: E402

MODES = ("whole", "tiled", "pass1", "pass2", "host")
CALIBRATED = ("pass1", "pass2", "whole", "host")  # the modes --calibrate fits, in its order


def _default_checkpoint() -> str:
    shared = pathlib.Path(os.environ.get("MANTRA_SHARED", REPO.parent / "shared"))
    return str(shared / "reference" / "ptrain4like_weights.h5")


def _mib(rusage_kib: int) -> float:
    return round(rusage_kib / 1024.0, 1)


def child(mode: str, height: int, width: int, tile: int, checkpoint: str, conv_algorithm: str,
          store: str = "file", bounded: bool = False) -> dict:
    """One measurement in this (fresh) process; see the module docstring."""
    import resource

    def peak() -> float:
        return _mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)

    t_start = time.perf_counter()
    import jax.numpy as jnp
    import numpy as np

    from mantra_jax.compile_cache import STATS
    from mantra_jax.io.checkpoints import load_model
    from mantra_jax.models.compute import with_choices
    from mantra_jax.perf import synthetic_photo

    model, variables, cfg = load_model(checkpoint)
    model = with_choices(model, conv_algorithm=conv_algorithm)
    image = synthetic_photo(height, width)
    record = {"mode": mode, "height": height, "width": width, "tile": tile if mode == "tiled" else None,
              "variant": cfg.get("variant"), "conv_algorithm": conv_algorithm,
              "start_seconds": round(time.perf_counter() - t_start, 2), "base_mib": peak()}
    t0 = time.perf_counter()
    if mode == "whole":
        from mantra_jax.infer.whole import predict

        out = predict(model, variables, image)
    elif mode == "tiled":
        from mantra_jax.infer.tiled import predict_tiled

        out = predict_tiled(model, variables, image, tile, store=store, bounded=bounded)
        record.update(store=store, bounded=bounded)
    elif mode == "pass1":
        from mantra_jax.infer.tiled import adapted_fn
        from mantra_jax.io.images import preprocess

        ones_h, ones_w = np.ones(height, np.float32), np.ones(width, np.float32)
        out = np.asarray(adapted_fn(model)(variables, jnp.asarray(preprocess(image)[None]), ones_h, ones_w)[1])
    elif mode == "pass2":
        from mantra_jax.infer.tiled import detect_fn

        c = int(variables["params"]["LADN"]["outlierTrans"]["kernel"].shape[-1])
        b = np.random.default_rng(0).normal(size=(1, height, width, c)).astype(np.float32)
        stat = np.zeros((1, 1, 1, c), np.float32)
        moments = (stat[0, 0, 0], stat[0, 0, 0] + 1) if model.bnorm_statistics == "image" else None
        out = np.asarray(detect_fn(model)(variables, jnp.asarray(b), moments, stat, stat + 1))
    else:  # host: detect's per-image work around the network
        import tempfile

        from mantra_jax.infer.detect import detect_file
        from mantra_jax.io.images import write_png_atomic

        with tempfile.TemporaryDirectory() as d:
            src = pathlib.Path(d) / "in.png"
            write_png_atomic(src, image)
            del image
            record["base_mib"] = peak()
            t0 = time.perf_counter()
            fake = lambda img: (np.random.default_rng(0).random(img.shape[:2], np.float32), True)  # noqa: E731
            detect_file(src, "in", pathlib.Path(d), fake)
        out = np.zeros(1)
    record.update(seconds=round(time.perf_counter() - t0, 2), compile_seconds=round(STATS.seconds, 2),
                  peak_mib=peak(), finite=bool(np.isfinite(np.asarray(out)).all()))
    return record


def run_child(mode: str, height: int, width: int, tile: int, store: str = "file", bounded: bool = False) -> dict:
    """``child`` in a fresh interpreter (compile cache off) with this run's --checkpoint, --conv_algorithm and
    --timeout; a failed or killed child is reported, not raised."""
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), f"--child={mode}", f"--sizes={width}x{height}",
           f"--tile={tile}", f"--checkpoint={_CHECKPOINT.value}", f"--conv_algorithm={_CONV_ALGORITHM.value}",
           f"--child_store={store}", "--child_bounded" if bounded else "--nochild_bounded"]
    env = {**os.environ, "MANTRA_COMPILE_CACHE": "off", "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    timeout = _TIMEOUT.value
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "height": height, "width": width, "error": f"timed out after {timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"mode": mode, "height": height, "width": width, "error": f"exit {done.returncode}: {tail}"}
    return json.loads(lines[-1])


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"256x256,1024x768"`` (width x height) -> [(height, width), ...]."""
    sizes = []
    for item in text.split(","):
        w, _, h = item.strip().lower().partition("x")
        try:
            sizes.append((int(h), int(w)))
        except ValueError:
            raise ValueError(f"sizes are WIDTHxHEIGHT, comma-separated; got {item!r}") from None
    return sizes


def _checked(parse):
    """An absl validator from a parser that raises ValueError (its message becomes the flag's error)."""
    def check(value) -> bool:
        try:
            parse(value)
        except ValueError as e:
            raise flags.ValidationError(str(e)) from None
        return True
    return check


def _modes(modes: list[str]) -> None:
    if not modes or not set(modes) <= set(CALIBRATED):
        raise ValueError(f"expected some of {','.join(CALIBRATED)}, got {','.join(modes)!r}")


_SIZES = flags.DEFINE_string("sizes", "256x256,512x512,1024x768", "WIDTHxHEIGHT,... of the table's images.")
_TILE = flags.DEFINE_integer("tile", 0, "Core tile of the tiled runs (0: the plan for --memory).", lower_bound=0)
_MEMORY = flags.DEFINE_string("memory", format_bytes(DEFAULT_BUDGET_BYTES),
                              "Budget whose plan the tiled runs follow (mantra detect's default).")
_MAX_MEMORY = flags.DEFINE_string("max_memory", "8G", "Skip whole-image runs estimated above this (e.g. 8G).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", _default_checkpoint(), "Weights of every run.")
_CONV_ALGORITHM = flags.DEFINE_string("conv_algorithm", "auto", "Convolution algorithm of the model.")
_TIMEOUT = flags.DEFINE_integer("timeout", 1800, "Seconds per child process.", lower_bound=1)
_CALIBRATE = flags.DEFINE_bool("calibrate", False, "Measure the per-pixel costs (module docstring).")
_CALIBRATE_MODES = flags.DEFINE_list("calibrate_modes", list(CALIBRATED),
                                     "With --calibrate: which of " + ",".join(CALIBRATED) + ".")
_CHILD = flags.DEFINE_enum("child", None, MODES, "Internal: one measurement in this process (run_child).")
_CHILD_STORE = flags.DEFINE_string("child_store", "file", "Internal: the child's feature store.")
_CHILD_BOUNDED = flags.DEFINE_bool("child_bounded", False, "Internal: the child's bounded shapes.")
flags.register_validator("sizes", _checked(parse_sizes))
flags.register_validator("memory", _checked(parse_bytes))
flags.register_validator("max_memory", _checked(parse_bytes))
flags.register_validator("calibrate_modes", _checked(_modes))


def _row(record: dict) -> str:
    if "error" in record:
        return f"{record['error']} | |"
    return f"{record['peak_mib']:.0f} MiB | {record['seconds']:.1f} s ({record['compile_seconds']:.1f} s compiling)"


def table() -> int:
    from mantra_jax.infer.memory import cost_for, estimate_whole_bytes, model_plan
    from mantra_jax.io.checkpoints import load_model

    limit, budget = parse_bytes(_MAX_MEMORY.value), parse_bytes(_MEMORY.value)
    model, variables, cfg = load_model(_CHECKPOINT.value)
    cost = cost_for(cfg.get("variant"), _CONV_ALGORITHM.value)
    how = (f"tile {_TILE.value}, features in a file" if _TILE.value else
           f"detect's default plan for --memory {_MEMORY.value}")
    print(f"| size | whole: peak RSS | whole: seconds | tiled ({how}): tile, store | peak RSS | seconds |")
    print("|---|---|---|---|---|---|")
    for h, w in parse_sizes(_SIZES.value):
        est = estimate_whole_bytes(cost, h, w)
        if est > limit:
            whole = f"skipped: estimated {format_bytes(est)} > --max_memory {format_bytes(limit)} | |"
        else:
            whole = _row(run_child("whole", h, w, 0))
        if _TILE.value:
            tile, store, bounded = _TILE.value, "file", False
        else:
            mp = model_plan(model, variables, cfg.get("variant"), (h, w), budget, bounded=True)
            tile, store, bounded = mp.tile, mp.store, True
        tiled = _row(run_child("tiled", h, w, tile, store, bounded))
        print(f"| {w} x {h} | {whole} | {tile}, {store} | {tiled} |", flush=True)
    return 0


def calibrate() -> int:
    """Peak RSS of each pass alone at a few region sizes, whole-image inference at a few image sizes and the
    host work at one large size; a least-squares line through each gives the per-pixel costs."""
    import numpy as np

    plan = {"pass1": [(160, 160), (288, 288), (416, 416)], "pass2": [(176, 176), (304, 304), (432, 432)],
            "whole": [(192, 192), (320, 320), (448, 448)], "host": [(1500, 2000), (3000, 4000)]}
    for mode, sizes in plan.items():
        if mode not in _CALIBRATE_MODES.value:
            continue
        recs = [run_child(mode, h, w, 0) for h, w in sizes]
        for r in recs:
            print(json.dumps(r), flush=True)
        ok = [r for r in recs if "error" not in r]
        if len(ok) >= 2:
            px = np.array([r["height"] * r["width"] for r in ok], np.float64)
            mib = np.array([r["peak_mib"] - (r["base_mib"] if mode == "host" else 0.0) for r in ok])
            slope, intercept = np.polyfit(px, mib * 2 ** 20, 1)
            print(json.dumps({"fit": mode, "bytes_per_pixel": round(float(slope), 1),
                              "intercept_mib": round(float(intercept) / 2 ** 20, 1),
                              "base_mib": [r["base_mib"] for r in ok]}), flush=True)
    return 0


def main(argv: list[str]) -> int:
    del argv
    if _CHILD.value:
        (h, w), = parse_sizes(_SIZES.value)
        print(json.dumps(child(_CHILD.value, h, w, _TILE.value, _CHECKPOINT.value, _CONV_ALGORITHM.value,
                               _CHILD_STORE.value, _CHILD_BOUNDED.value)), flush=True)
        return 0
    return calibrate() if _CALIBRATE.value else table()


if __name__ == "__main__":
    script_main(main)
