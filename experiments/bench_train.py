"""Train-step throughput: compile time, seconds per step, images/s, megapixels/s and achieved GFLOP/s of the
jitted, sharded train step (the loop's own) for a model variant, batch and image size, on all local devices,
for each way of computing the convolutions' kernel gradients, against the plain autodiff step ("plain":
XLA's kernel gradients, and for IMC the head's logits as the mean of its full-resolution logit map, as a
plain ``nn.Conv`` model computes them; the other modes use ``conv2d_symmetric_mean`` for that).

    python experiments/bench_train.py                                       # the imc385 cpu config's step
    python experiments/bench_train.py --variant=ptrain4 --batch=4 --size=128 --steps=3   # the paper model
    python experiments/bench_train.py --task=localisation --variant=ptrain4 --batch=4 --size=256
    python experiments/bench_train.py --modes=auto --conv_algorithms=auto,direct   # Winograd vs direct

Also reports the float32 ``jnp.dot`` peak of the same run and the step time that XLA's FLOP count of the
plain step would take at that peak (``step_s_at_dot_peak``).
Synthetic batches (random images, labels / masks): measures the model and optimiser, not the input
pipeline (see experiments/bench_data.py). Prints one JSON document (and writes it to --out when given).
"""

from __future__ import annotations

import json
import pathlib
import platform
import sys
import time

import jax
import numpy as np
from absl import flags

from mantra_jax.io.atomic import write_text_atomic
from mantra_jax.models.compute import Compute
from mantra_jax.models.config import catalogue_size
from mantra_jax.models.variants import make_imc_classifier, make_mantranet
from mantra_jax.perf import compiled_flops, dot_peak_gflops
from mantra_jax.train import sharding
from mantra_jax.train.optimizer import adam
from mantra_jax.train.state import create_train_state, init_variables
from mantra_jax.train.step import make_train_step
from mantra_jax.train.tasks import imc_task, localisation_task

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "imc", ["imc", "localisation"], "Which train step.")
flags.DEFINE_string("variant", "tiny", "Model preset (mantra_jax.models.variants).")
flags.DEFINE_integer("batch", 16, "Global batch size.")
flags.DEFINE_integer("size", 32, "Square image side.")
flags.DEFINE_integer("steps", 10, "Timed steps (after one warm-up step).")
flags.DEFINE_bool("frozen_featex", False, "Localisation: freeze the feature extractor (HF setting).")
flags.DEFINE_list("modes", ["plain", "xla", "auto"],
                  "Modes to time: plain, or a kernel_grad choice of mantra_jax.models.compute (xla, auto, matmul).")
flags.DEFINE_list("conv_algorithms", ["auto"],
                  "Trunk convolution algorithms to time each mode with (mantra_jax.models.compute; auto: "
                  "Winograd on CPU for wide 3 x 3 layers); rows are keyed 'mode' or 'mode/algorithm'.")
flags.DEFINE_string("out", "", "JSON output path.")


def _batch(task: str, b: int, s: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    batch = {"image": rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32)}
    if task == "imc":
        batch["label"] = rng.integers(0, catalogue_size(), b).astype(np.int32)
    else:
        batch["mask"] = (rng.uniform(size=(b, s, s, 1)) < 0.3).astype(np.float32)
        batch["kind"] = rng.integers(0, 4, b).astype(np.int32)
    return batch


def time_mode(mode: str, batch: dict[str, np.ndarray], mesh, conv_algorithm: str = "auto") -> dict:
    compute = Compute(kernel_grad="xla" if mode == "plain" else mode, conv_algorithm=conv_algorithm)
    if FLAGS.task == "imc":
        model = make_imc_classifier(FLAGS.variant, num_classes=catalogue_size(), compute=compute,
                                    fused_head_mean=mode != "plain")
        task = imc_task()
    else:
        model, task = make_mantranet(FLAGS.variant, compute=compute), localisation_task()
    tx = adam()
    state = sharding.replicate(create_train_state(init_variables(model, 0), tx, 0), mesh)
    frozen = ("Featex",) if FLAGS.frozen_featex and FLAGS.task == "localisation" else ()
    step = sharding.jit_train_step(make_train_step(model, task.loss_fn, tx, frozen=frozen), mesh)
    sharded = sharding.shard_batch(batch, mesh)
    t0 = time.perf_counter()
    compiled = step.lower(state, sharded).compile()
    compile_s = time.perf_counter() - t0
    state, m = compiled(state, sharded)
    jax.block_until_ready(m)
    times = []
    for _ in range(FLAGS.steps):
        t0 = time.perf_counter()
        state, m = compiled(state, sharded)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    b, s = FLAGS.batch, FLAGS.size
    flops = compiled_flops(compiled)
    return {"compile_s": round(compile_s, 3), "step_s_median": round(median, 4), "step_s_min": round(min(times), 4),
            "steps_per_s": round(1 / median, 3), "images_per_s": round(b / median, 2),
            "megapixels_per_s": round(b * s * s / median / 1e6, 4), "flops": flops,
            "gflops_per_s": round(flops / median / 1e9, 1) if flops else None}


def main(argv: list[str]) -> None:
    del argv
    mesh = sharding.make_mesh()
    batch = _batch(FLAGS.task, FLAGS.batch, FLAGS.size)
    algorithms = FLAGS.conv_algorithms
    modes = {}  # an algorithm listed again is timed again (interleaved repeats): key suffix "#2", ...
    for k, algo in enumerate(algorithms):
        again = algorithms[:k].count(algo)
        for mode in FLAGS.modes:
            key = mode if len(algorithms) == 1 else f"{mode}/{algo}" + (f"#{again + 1}" if again else "")
            modes[key] = time_mode(mode, batch, mesh, algo)
    peak = dot_peak_gflops()
    result = {
        "machine": {"platform": platform.platform(), "backend": jax.default_backend(),
                    "devices": [str(d) for d in jax.devices()], "jax": jax.__version__},
        "settings": {"task": FLAGS.task, "variant": FLAGS.variant, "batch": FLAGS.batch, "size": FLAGS.size,
                     "frozen_featex": FLAGS.frozen_featex, "conv_algorithms": algorithms},
        "dot_peak_gflops": round(peak, 1), "modes": modes,
    }
    plain = modes.get("plain" if len(algorithms) == 1 else f"plain/{algorithms[0]}")
    if plain:
        for row in modes.values():
            row["speedup_over_plain"] = round(plain["step_s_median"] / row["step_s_median"], 3)
        if plain["flops"]:
            at_peak = plain["flops"] / (peak * 1e9)
            result["step_s_at_dot_peak"] = round(at_peak, 4)
            result["max_speedup_over_plain_at_dot_peak"] = round(plain["step_s_median"] / at_peak, 3)
    text = json.dumps(result, indent=1)
    print(text)
    if FLAGS.out:
        write_text_atomic(FLAGS.out, text + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)
    from experiments.script_main import script_main

    script_main(main)
