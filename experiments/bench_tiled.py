"""FLOPs, time and peak memory of exact tiled inference on one large synthetic image.

    python experiments/bench_tiled.py --height 3000 --width 4000 --tile 512 --flops_only
    /usr/bin/time -v python experiments/bench_tiled.py --height 560 --width 540 --tile 512 --store file

``--flops_only`` compiles without running (variables as shapes only) and reports XLA's FLOP counts of both
passes against whole-image inference (``mantra_jax.infer.tiled.tiled_flops``). Otherwise it runs
``predict_tiled`` once on a random-content image with the chosen variant at random initialisation (or
``--checkpoint``) and reports wall time per pass, tile counts, compilations and compile seconds, and the
process's peak resident set size (``ru_maxrss``; ``/usr/bin/time -v`` reports the same figure).
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
from absl import flags

from mantra_jax.compile_cache import STATS
from mantra_jax.infer.halo import receptive_halo
from mantra_jax.infer.plan import plan
from mantra_jax.infer.tiled import compile_count, predict_tiled, tiled_flops
from mantra_jax.infer.whole import predict
from mantra_jax.io.checkpoints import load_model
from mantra_jax.models.config import model_from_config
from mantra_jax.perf import synthetic_photo

_VARIANT = flags.DEFINE_string("variant", "ptrain4", "Model preset (random initialisation).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint to load instead of a random model.")
_HEIGHT = flags.DEFINE_integer("height", 3000, "Image height.", lower_bound=1)
_WIDTH = flags.DEFINE_integer("width", 4000, "Image width.", lower_bound=1)
_TILE = flags.DEFINE_integer("tile", 512, "Core tile size.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the image and the initialisation.")
_STORE = flags.DEFINE_enum("store", "auto", ["auto", "memory", "file"], "Where pass-1 features wait.")
_BOUNDED = flags.DEFINE_bool("bounded", False, "Tile short axes too (bounded shapes).")
_FLOPS_ONLY = flags.DEFINE_bool("flops_only", False, "Only XLA's FLOP counts (compile, run nothing).")
_CHECK_WHOLE = flags.DEFINE_bool("check_whole", False, "Also run whole-image inference and compare.")
_OUT = flags.DEFINE_string("out", None, "JSON output path (default: print only).")


def _emit(result: dict) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if _OUT.value:
        pathlib.Path(_OUT.value).write_text(text + "\n")


def main(argv: list[str]) -> None:
    del argv
    h, w, tile = _HEIGHT.value, _WIDTH.value, _TILE.value
    if _CHECKPOINT.value:
        model, variables, cfg = load_model(_CHECKPOINT.value)
    else:
        cfg = {"kind": "mantranet", "variant": _VARIANT.value}
        model = model_from_config(cfg)
        init = lambda: model.init(jax.random.key(_SEED.value), jnp.zeros((1, 8, 8, 3), jnp.float32))  # noqa: E731
        variables = jax.eval_shape(init) if _FLOPS_ONLY.value else init()
    halo = receptive_halo(model)
    if _FLOPS_ONLY.value:
        _emit({"config": cfg, "height": h, "width": w, "tile": tile, "featex_halo": halo.featex,
               "ladn_halo": halo.ladn, **tiled_flops(model, variables, h, w, tile, bounded=_BOUNDED.value)})
        return
    image = synthetic_photo(h, w, _SEED.value)
    times: list[float] = []

    def progress(done: int, total: int) -> None:
        times.append(time.perf_counter())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"tile {done}/{total} at {times[-1] - t0:.1f} s, peak RSS so far {rss:.0f} MiB", file=sys.stderr,
              flush=True)

    compile_s = STATS.seconds
    t0 = time.perf_counter()
    prob = predict_tiled(model, variables, image, tile, progress, store=_STORE.value, bounded=_BOUNDED.value)
    elapsed = time.perf_counter() - t0
    n1 = len(plan(h, w, tile, halo.featex, bounded=_BOUNDED.value))
    result = {
        "config": cfg, "height": h, "width": w, "tile": tile, "featex_halo": halo.featex, "ladn_halo": halo.ladn,
        "pass1_tiles": n1, "pass2_tiles": len(plan(h, w, tile, halo.ladn, bounded=_BOUNDED.value)),
        "store": _STORE.value, "seconds": elapsed, "compile_seconds": STATS.seconds - compile_s,
        "pass1_seconds": (times[n1 - 1] - t0) if len(times) >= n1 else None,
        "compilations": compile_count(model),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "map_mean": float(prob.mean()), "device": str(jax.devices()[0]),
    }
    if _CHECK_WHOLE.value:
        result["max_abs_diff_vs_whole"] = float(np.abs(predict(model, variables, image) - prob).max())
    _emit(result)


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)
    from experiments.script_main import script_main

    script_main(main)
