"""Forward-pass benchmark: seconds per megapixel and achieved GFLOP/s of the whole ManTra-Net.

For each square size (batch 1) it reports compile time apart from run time, XLA's FLOP count for the
compiled forward (cost analysis), the achieved GFLOP/s, and the float32 ``jnp.dot`` peak measured in the
same run, so the fraction of peak is comparable across machines. ``--dtype bfloat16`` runs the feature
extractor in bf16 and also reports the largest deviation of ``pred`` from float32.

    python experiments/bench_forward.py --sizes 256,512,1024 --out bench_forward.json
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from absl import app, flags

import jax
import jax.numpy as jnp
import numpy as np

from mantra_jax.models.variants import make_mantranet
from mantra_jax.perf import best_time, compiled_flops, dot_peak_gflops

FLAGS = flags.FLAGS
flags.DEFINE_string("variant", "ptrain4", "model preset")
flags.DEFINE_string("sizes", "256,512,1024", "comma-separated square sizes")
flags.DEFINE_integer("repeats", 3, "timed runs per size (best is reported)")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "feature-extractor compute dtype")
flags.DEFINE_integer("dot_size", 2048, "matrix size for the jnp.dot peak")
flags.DEFINE_string("out", "", "JSON output path (default: print only)")


def bench_size(model, variables, size: int, repeats: int, ref_model=None) -> dict:
    x = jnp.asarray(np.random.default_rng(size).uniform(-1, 1, (1, size, size, 3)), jnp.float32)
    fwd = lambda v, a: model.apply(v, a)["pred"]  # noqa: E731
    t0 = time.perf_counter()
    compiled = jax.jit(fwd).lower(variables, x).compile()
    compile_s = time.perf_counter() - t0
    pred = compiled(variables, x).block_until_ready()
    run_s = best_time(lambda: compiled(variables, x).block_until_ready(), repeats)
    flops = compiled_flops(compiled)
    mp = size * size / 1e6
    row = {"size": size, "compile_s": compile_s, "run_s": run_s, "s_per_megapixel": run_s / mp,
           "flops": flops, "gflops_per_s": flops / run_s / 1e9 if flops else None}
    if ref_model is not None:
        ref = jax.jit(lambda v, a: ref_model.apply(v, a)["pred"])(variables, x)
        row["max_abs_pred_deviation_from_float32"] = float(jnp.abs(pred - ref).max())
    return row


def main(argv):
    del argv
    dtype = jnp.bfloat16 if FLAGS.dtype == "bfloat16" else jnp.float32
    model = make_mantranet(FLAGS.variant, dtype=dtype)
    ref_model = make_mantranet(FLAGS.variant) if dtype != jnp.float32 else None
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    peak = dot_peak_gflops(FLAGS.dot_size)
    rows = []
    for size in (int(s) for s in FLAGS.sizes.split(",")):
        row = bench_size(model, variables, size, FLAGS.repeats, ref_model)
        row["fraction_of_dot_peak"] = row["gflops_per_s"] / peak if row["gflops_per_s"] else None
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
              "jax": jax.__version__, "variant": FLAGS.variant, "dtype": FLAGS.dtype,
              "dot_peak_gflops_float32": peak, "results": rows}
    print(json.dumps(result, indent=2))
    if FLAGS.out:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(FLAGS.out)) or ".")
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=2)
        os.replace(tmp, FLAGS.out)


if __name__ == "__main__":
    app.run(main)
