"""Forward-pass benchmark: per-layer and whole-model seconds, GFLOP/s and share of the ``jnp.dot`` peak.

For each square size (batch 1) it times every convolution of the feature extractor on the path the model
uses (``conv_algorithm``, "auto" by default: Winograd on CPU for wide 3 x 3 layers) and on the direct
path, the LADN parts (1x1 outlierTrans, window means, ConvLSTM, 7x7 pred), and the whole jitted forward
(compile time apart). GFLOP/s are effective: direct-convolution FLOPs (2 k^2 I O per output pixel) over
seconds, whatever the algorithm, so they compare with the float32 ``jnp.dot`` peak measured in the same
run. Prints one JSON line per layer and a JSON summary.

    python experiments/bench_forward.py --sizes 256,512 --out bench_forward.json
    python experiments/bench_forward.py --parts=ladn --sizes 256   # the LADN ops only
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
import time

from absl import flags

import jax
import jax.numpy as jnp
import numpy as np

from mantra_jax.models.compute import Compute
from mantra_jax.models.variants import get_variant, make_mantranet
from mantra_jax.models.ladn import AnomalyDetector
from mantra_jax.models.structure import forward_flops_per_pixel, in_parts
from mantra_jax.ops.anomaly import deviations, time_z
from mantra_jax.ops.conv import conv2d, conv2d_same, conv2d_symmetric
from mantra_jax.ops.convlstm import convlstm
from mantra_jax.perf import best_time, conv_flops, dot_peak_gflops

FLAGS = flags.FLAGS
flags.DEFINE_string("variant", "ptrain4", "model preset")
flags.DEFINE_string("sizes", "256,512", "comma-separated square sizes")
flags.DEFINE_integer("repeats", 3, "timed runs (best is reported)")
flags.DEFINE_enum("conv_algorithm", "auto", ["auto", "direct", "winograd2", "winograd3", "winograd4"],
                  "trunk convolution algorithm of the model")
flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "feature-extractor compute dtype (model rows)")
flags.DEFINE_boolean("layers", True, "also time every layer alone")
flags.DEFINE_enum("parts", "all", ["all", "ladn"], "ladn: only the LADN rows (no trunk layers, no whole model)")
flags.DEFINE_integer("dot_size", 2048, "matrix size for the jnp.dot peak")
flags.DEFINE_string("out", "", "JSON output path (default: print only)")


def _rand(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _time(fn, *args, repeats):
    f = jax.jit(fn)
    jax.block_until_ready(f(*args))
    return best_time(lambda: jax.block_until_ready(f(*args)), repeats)


def featex_layers(variant):
    """(name, k, in, out) of every feature-extractor convolution (``mantra_jax.models.structure``)."""
    return [(l.name, l.kernel, l.in_ch, l.out_ch) for l in get_variant(variant).featex.layers()]


def ladn_flops(model, size):
    """Direct-convolution FLOPs of the LADN of ``model`` at ``size``^2, as it runs them (its layers,
    ``mantra_jax.models.structure``, less step 0's recurrent convolution of the zero state, which is skipped)."""
    layers = in_parts(model.layers(), ("ladn",))
    recurrent = [layer for layer in layers if layer.name.endswith("/recurrent_kernel")]
    return size * size * (forward_flops_per_pixel(layers) - sum(r.flops_per_pixel // r.steps for r in recurrent))


def layer_rows(variant, size, algorithm, repeats, peak):
    rows = []
    rule = Compute(conv_algorithm=algorithm).resolve(jax.default_backend()).rule  # float32, as the inputs
    for name, k, cin, cout in featex_layers(variant):
        x, w = _rand((1, size, size, cin), 1), _rand((k, k, cin, cout), 2)
        algo = rule.algorithm(w.shape)
        t = _time(lambda a, b, al=algo: conv2d_symmetric(a, b, algorithm=al), x, w, repeats=repeats)
        t_direct = t if algo == "direct" else _time(
            lambda a, b: conv2d_symmetric(a, b, algorithm="direct"), x, w, repeats=repeats)
        rows.append({"layer": name, "shape": f"{k}x{k} {cin}->{cout}", "algorithm": algo,
                     "flops": conv_flops(size, size, k, cin, cout), "s": t, "direct_s": t_direct})
    return _finish(rows + ladn_rows(variant, size, repeats), size, peak)


def ladn_rows(variant, size, repeats):
    """Every LADN op alone at batch 1 (the anomaly feature on the release's ``time_z`` path) and the whole
    LADN (``AnomalyDetector`` on a featex map), its convolutions' sizes read from the model's layers
    (``mantra_jax.models.structure.ladn_layers``)."""
    m = make_mantranet(variant)
    win = tuple(m.windows)
    outlier, lstm_in, lstm_rec, pred = in_parts(m.layers(), ("ladn",))  # the order of ladn_layers
    c, a, f4, f, t_steps = outlier.in_ch, outlier.out_ch, lstm_in.out_ch, lstm_rec.in_ch, lstm_in.steps
    kl, kp = lstm_in.kernel, pred.kernel
    feat, x = _rand((1, size, size, c), 3), _rand((1, size, size, a), 4)
    z = jnp.abs(_rand((1, t_steps, size, size, a), 11))
    mu, sigma = jnp.mean(x, axis=(1, 2), keepdims=True), jnp.std(x, axis=(1, 2), keepdims=True)
    kx, kh, b = _rand((kl, kl, a, f4), 6) * 0.05, _rand((kl, kl, f, f4), 7) * 0.05, _rand((f4,), 8)
    h = _rand((1, size, size, f), 9)
    rows = [
        {"layer": "outlierTrans", "shape": f"1x1 {c}->{a}", "flops": conv_flops(size, size, 1, c, a),
         "s": _time(conv2d, feat, _rand((1, 1, c, a), 5), repeats=repeats)},
        {"layer": "window_means", "shape": f"{win} x {a}, minus x", "flops": 0,
         "s": _time(lambda x_, m_: deviations(x_, win, m_), x, mu, repeats=repeats)},
        {"layer": "z_scores", "shape": f"time_z {win} + global x {a}", "flops": 0,
         "s": _time(lambda x_, m_, s_: time_z(x_, m_, s_, win)["features"], x, mu, sigma, repeats=repeats)},
        {"layer": "cLSTM_input", "shape": f"{kl}x{kl} {a}->{f4} x{t_steps} (one batched conv)",
         "flops": t_steps * conv_flops(size, size, kl, a, f4),
         "s": _time(lambda x_, k, bb: conv2d_same(x_.reshape(-1, size, size, a), k, bb), z, kx, b, repeats=repeats)},
        {"layer": "cLSTM_recurrent", "shape": f"{kl}x{kl} {f}->{f4} (one of {t_steps - 1})",
         "flops": conv_flops(size, size, kl, f, f4), "s": _time(conv2d_same, h, kh, repeats=repeats)},
        {"layer": "cLSTM", "shape": f"{kl}x{kl} {a}->{f4} x{t_steps} + {kl}x{kl} {f}->{f4} x{t_steps - 1} + gates",
         "flops": t_steps * conv_flops(size, size, kl, a, f4) + (t_steps - 1) * conv_flops(size, size, kl, f, f4),
         "s": _time(convlstm, z, kx, kh, b, repeats=repeats)},
        {"layer": "pred", "shape": f"{kp}x{kp} {f}->1", "flops": conv_flops(size, size, kp, f, 1),
         "s": _time(conv2d_same, h, _rand((kp, kp, f, 1), 10), repeats=repeats)},
    ]
    ladn = AnomalyDetector(windows=win)
    lv = ladn.init(jax.random.key(0), jnp.zeros((1, 32, 32, c)))
    fl = feat / jnp.linalg.norm(feat, axis=-1, keepdims=True)
    rows.append({"layer": "LADN", "shape": f"whole, {c}-channel featex in", "flops": conv_flops(size, size, 1, c, 64)
                 + rows[5]["flops"] + rows[6]["flops"],
                 "s": _time(lambda v, a: ladn.apply(v, a)["pred"], lv, fl, repeats=repeats)})
    return rows


def _finish(rows, size, peak):
    for r in rows:
        r["size"] = size
        r["gflops_per_s"] = r["flops"] / r["s"] / 1e9
        r["share_of_dot_peak"] = r["gflops_per_s"] / peak
    return rows


def model_row(variant, size, algorithm, repeats, peak, dtype=jnp.float32):
    model = make_mantranet(variant, compute=Compute(dtype=dtype, conv_algorithm=algorithm))
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    x = jnp.asarray(np.random.default_rng(size).uniform(-1, 1, (1, size, size, 3)), jnp.float32)
    t0 = time.perf_counter()
    compiled = jax.jit(lambda v, a: model.apply(v, a)["pred"]).lower(variables, x).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(variables, x))
    run_s = best_time(lambda: jax.block_until_ready(compiled(variables, x)), repeats)
    flops = sum(conv_flops(size, size, k, i, o) for _, k, i, o in featex_layers(variant)) + ladn_flops(model, size)
    gf = flops / run_s / 1e9
    return {"size": size, "conv_algorithm": algorithm, "compile_s": compile_s, "run_s": run_s,
            "s_per_megapixel": run_s / (size * size / 1e6), "direct_conv_flops": flops, "gflops_per_s": gf,
            "share_of_dot_peak": gf / peak}


def main(argv):
    del argv
    peak = dot_peak_gflops(FLAGS.dot_size)
    result = {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
              "jax": jax.__version__, "variant": FLAGS.variant, "dtype": FLAGS.dtype, "dot_peak_gflops_float32": peak,
              "layers": [], "totals": []}
    for size in (int(s) for s in FLAGS.sizes.split(",")):
        if FLAGS.parts == "ladn":
            for row in _finish(ladn_rows(FLAGS.variant, size, FLAGS.repeats), size, peak):
                result["layers"].append(row)
                print(json.dumps(row), flush=True)
            continue
        if FLAGS.layers:
            for row in layer_rows(FLAGS.variant, size, FLAGS.conv_algorithm, FLAGS.repeats, peak):
                result["layers"].append(row)
                print(json.dumps(row), flush=True)
            layer_s = sum(r["s"] for r in result["layers"] if r["size"] == size)
        for algorithm in dict.fromkeys([FLAGS.conv_algorithm, "direct"]):
            row = model_row(FLAGS.variant, size, algorithm, FLAGS.repeats, peak,
                            jnp.bfloat16 if FLAGS.dtype == "bfloat16" else jnp.float32)
            if FLAGS.layers:
                row["sum_of_layer_s"] = layer_s if algorithm == FLAGS.conv_algorithm else None
            result["totals"].append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps(result, indent=2))
    if FLAGS.out:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(FLAGS.out)) or ".")
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=2)
        os.replace(tmp, FLAGS.out)


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)
    from experiments.script_main import script_main

    script_main(main)
