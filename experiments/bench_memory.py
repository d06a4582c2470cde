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

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the repository root (see __init__.py)

MODES = ("whole", "tiled", "pass1", "pass2", "host")


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


def run_child(mode: str, height: int, width: int, tile: int, args: argparse.Namespace, store: str = "file",
              bounded: bool = False) -> dict:
    """``child`` in a fresh interpreter (compile cache off); a failed or killed child is reported, not raised."""
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", mode, "--sizes", f"{width}x{height}",
           "--tile", str(tile), "--checkpoint", args.checkpoint, "--conv_algorithm", args.conv_algorithm,
           "--child_store", store, "--child_bounded" if bounded else "--no-child_bounded"]
    env = {**os.environ, "MANTRA_COMPILE_CACHE": "off", "PYTHONPATH": os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "height": height, "width": width, "error": f"timed out after {args.timeout} s"}
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
            raise argparse.ArgumentTypeError(f"sizes are WIDTHxHEIGHT, comma-separated; got {item!r}") from None
    return sizes


def _row(record: dict) -> str:
    if "error" in record:
        return f"{record['error']} | |"
    return f"{record['peak_mib']:.0f} MiB | {record['seconds']:.1f} s ({record['compile_seconds']:.1f} s compiling)"


def table(args: argparse.Namespace) -> int:
    from mantra_jax.infer.memory import cost_for, estimate_whole_bytes, format_bytes, model_plan, parse_bytes
    from mantra_jax.io.checkpoints import load_model

    limit, budget = parse_bytes(args.max_memory), parse_bytes(args.memory)
    model, variables, cfg = load_model(args.checkpoint)
    cost = cost_for(cfg.get("variant"), args.conv_algorithm)
    how = f"tile {args.tile}, features in a file" if args.tile else f"detect's default plan for --memory {args.memory}"
    print(f"| size | whole: peak RSS | whole: seconds | tiled ({how}): tile, store | peak RSS | seconds |")
    print("|---|---|---|---|---|---|")
    for h, w in args.sizes:
        est = estimate_whole_bytes(cost, h, w)
        if est > limit:
            whole = f"skipped: estimated {format_bytes(est)} > --max_memory {format_bytes(limit)} | |"
        else:
            whole = _row(run_child("whole", h, w, 0, args))
        if args.tile:
            tile, store, bounded = args.tile, "file", False
        else:
            mp = model_plan(model, variables, cfg.get("variant"), (h, w), budget, bounded=True)
            tile, store, bounded = mp.tile, mp.store, True
        tiled = _row(run_child("tiled", h, w, tile, args, store, bounded))
        print(f"| {w} x {h} | {whole} | {tile}, {store} | {tiled} |", flush=True)
    return 0


def calibrate(args: argparse.Namespace) -> int:
    """Peak RSS of each pass alone at a few region sizes, whole-image inference at a few image sizes and the
    host work at one large size; a least-squares line through each gives the per-pixel costs."""
    import numpy as np

    plan = {"pass1": [(160, 160), (288, 288), (416, 416)], "pass2": [(176, 176), (304, 304), (432, 432)],
            "whole": [(192, 192), (320, 320), (448, 448)], "host": [(1500, 2000), (3000, 4000)]}
    for mode, sizes in plan.items():
        if mode not in args.calibrate_modes:
            continue
        recs = [run_child(mode, h, w, 0, args) for h, w in sizes]
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_memory.py", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=parse_sizes, default=parse_sizes("256x256,512x512,1024x768"),
                   help="WIDTHxHEIGHT,... (default %(default)s)")
    p.add_argument("--tile", type=int, default=0, help="core tile of the tiled runs (default: the plan for --memory)")
    p.add_argument("--memory", default="2G", help="budget whose plan the tiled runs follow (default %(default)s)")
    p.add_argument("--max_memory", default="8G", help="skip whole-image runs estimated above this (e.g. 8G)")
    p.add_argument("--checkpoint", default=_default_checkpoint())
    p.add_argument("--conv_algorithm", default="auto")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per child process")
    p.add_argument("--calibrate", action="store_true", help="measure the per-pixel costs (module docstring)")
    p.add_argument("--calibrate_modes", type=lambda t: t.split(","), default=["pass1", "pass2", "whole", "host"],
                   help="with --calibrate: which of pass1,pass2,whole,host")
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--child_store", default="file", help=argparse.SUPPRESS)
    p.add_argument("--child_bounded", action=argparse.BooleanOptionalAction, default=False, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        (h, w), = args.sizes
        print(json.dumps(child(args.child, h, w, args.tile, args.checkpoint, args.conv_algorithm, args.child_store,
                               args.child_bounded)), flush=True)
        return 0
    return calibrate(args) if args.calibrate else table(args)


if __name__ == "__main__":
    sys.exit(main())
