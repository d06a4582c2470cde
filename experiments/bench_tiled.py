"""Time and peak memory of exact tiled inference on one large synthetic image.

    /usr/bin/time -v python experiments/bench_tiled.py --height 3000 --width 4000 --tile 512 --out t.json

Runs ``mantra_jax.infer.tiled.predict_tiled`` once on a random-content image with the chosen variant at
random initialisation (or ``--checkpoint``), and reports wall time per pass, tile counts, compilations and
the process's peak resident set size (``ru_maxrss``; ``/usr/bin/time -v`` reports the same figure).
``--check_whole`` also runs whole-image inference and reports the largest difference (small images only).
"""

from __future__ import annotations

import json
import pathlib
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from mantra_jax.infer.tiled import compile_count, plan, predict_tiled, receptive_halo
from mantra_jax.infer.whole import predict
from mantra_jax.io.checkpoints import load_model, model_from_config

_VARIANT = flags.DEFINE_string("variant", "ptrain4", "Model preset (random initialisation).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint to load instead of a random model.")
_HEIGHT = flags.DEFINE_integer("height", 3000, "Image height.", lower_bound=1)
_WIDTH = flags.DEFINE_integer("width", 4000, "Image width.", lower_bound=1)
_TILE = flags.DEFINE_integer("tile", 512, "Core tile size.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the image and the initialisation.")
_CHECK_WHOLE = flags.DEFINE_bool("check_whole", False, "Also run whole-image inference and compare.")
_OUT = flags.DEFINE_string("out", None, "JSON output path (default: print only).")


def main(argv: list[str]) -> None:
    del argv
    if _CHECKPOINT.value:
        model, variables, cfg = load_model(_CHECKPOINT.value)
    else:
        cfg = {"kind": "mantranet", "variant": _VARIANT.value}
        model = model_from_config(cfg)
        variables = model.init(jax.random.key(_SEED.value), jnp.zeros((1, 8, 8, 3), jnp.float32))
    rng = np.random.default_rng(_SEED.value)
    # Smooth random content plus noise: closer to a photo than i.i.d. noise, cheap to make.
    low = rng.integers(0, 256, (_HEIGHT.value // 16 + 1, _WIDTH.value // 16 + 1, 3)).astype(np.float32)
    image = np.repeat(np.repeat(low, 16, axis=0), 16, axis=1)[:_HEIGHT.value, :_WIDTH.value]
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    halo = receptive_halo(model)
    h, w = image.shape[:2]
    times: list[float] = []

    def progress(done: int, total: int) -> None:
        times.append(time.perf_counter())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"tile {done}/{total} at {times[-1] - t0:.1f} s, peak RSS so far {rss:.0f} MiB", file=sys.stderr,
              flush=True)

    t0 = time.perf_counter()
    prob = predict_tiled(model, variables, image, _TILE.value, progress)
    elapsed = time.perf_counter() - t0
    n1 = len(plan(h, w, _TILE.value, halo.featex))
    result = {
        "config": cfg, "height": h, "width": w, "tile": _TILE.value, "halo": halo.total,
        "featex_halo": halo.featex, "pass1_tiles": n1, "pass2_tiles": len(plan(h, w, _TILE.value, halo.total)),
        "seconds": elapsed,
        "pass1_seconds": (times[n1 - 1] - t0) if len(times) >= n1 else None,
        "compilations": compile_count(model),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "map_mean": float(prob.mean()), "device": str(jax.devices()[0]),
    }
    if _CHECK_WHOLE.value:
        result["max_abs_diff_vs_whole"] = float(np.abs(predict(model, variables, image) - prob).max())
    text = json.dumps(result, indent=2)
    print(text)
    if _OUT.value:
        pathlib.Path(_OUT.value).write_text(text + "\n")


if __name__ == "__main__":
    app.run(main)
