"""Window-mean benchmark: run time against window size (it should stay flat) and accuracy vs float64.

    python experiments/bench_box.py --size 1024 --channels 64 --windows 7,15,31,63
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

from absl import flags

import jax
import jax.numpy as jnp
import numpy as np

from mantra_jax.ops.box import window_mean

FLAGS = flags.FLAGS
flags.DEFINE_integer("size", 1024, "square image size")
flags.DEFINE_integer("channels", 64, "feature channels")
flags.DEFINE_string("windows", "7,15,31,63,127", "window sizes")
flags.DEFINE_integer("repeats", 5, "timed runs per window (best is reported)")


def _ref_1d(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    r, length = n // 2, x.shape[axis]
    c = np.concatenate([np.zeros_like(np.take(x, [0], axis=axis)), np.cumsum(x, axis=axis)], axis=axis)
    hi = np.minimum(np.arange(length) + r, length - 1) + 1
    lo = np.maximum(np.arange(length) - r, 0)
    shape = [1] * x.ndim
    shape[axis] = length
    return (np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)) / (hi - lo).reshape(shape)


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    x = rng.uniform(-10, 10, (1, FLAGS.size, FLAGS.size, FLAGS.channels)).astype(np.float32)
    xj = jnp.asarray(x)
    x64 = x[..., :2].astype(np.float64)
    rows = []
    for n in (int(w) for w in FLAGS.windows.split(",")):
        f = jax.jit(lambda a, n=n: window_mean(a, n))
        f(xj).block_until_ready()
        best = float("inf")
        for _ in range(FLAGS.repeats):
            t = time.perf_counter()
            f(xj).block_until_ready()
            best = min(best, time.perf_counter() - t)
        err = float(np.abs(np.asarray(f(xj))[..., :2] - _ref_1d(_ref_1d(x64, n, 1), n, 2)).max())
        rows.append({"window": n, "seconds": best, "max_abs_err_vs_float64": err})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"backend": jax.default_backend(), "size": FLAGS.size, "channels": FLAGS.channels,
                      "results": rows}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)
    from experiments.script_main import script_main

    script_main(main)
