"""Device memory of a release-size train step, estimated on the CPU from compiles at batch 1 and 2.

    python experiments/memory_estimate.py --kind hr --size 256 --batch 64 [--dtype float32] [--limit_gib 139]

The step is the accelerator's (XLA kernel gradients, ``for_platform(model, "cuda")``) compiled for the
CPU; ``mantra_jax.train.preflight.scaled_estimate`` extrapolates its memory linearly in the batch. With
``--limit_gib`` it also says how many micro-batches the preflight would need on such a device.
"""

from __future__ import annotations

import math
import pathlib
import sys
import time

from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)

from experiments.script_main import script_main  # noqa: E402

_VARIANT = flags.DEFINE_string("variant", "ptrain4", "Model preset.")
_KIND = flags.DEFINE_enum("kind", "hr", ["hr", "imc"], "hr: the ManTra-Net localisation step; imc: the IMC step.")
_SIZE = flags.DEFINE_integer("size", 256, "Square crop side of the batch.", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch", 64, "Batch size estimated for.", lower_bound=1)
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Compute dtype of the model.")
_LIMIT_GIB = flags.DEFINE_float("limit_gib", 139.0, "Device memory (GiB) the micro-batch count is for.",
                                lower_bound=0.0)


def main(argv: list[str]) -> int:
    del argv
    variant, kind, s, batch, dtype, limit_gib = (_VARIANT.value, _KIND.value, _SIZE.value, _BATCH.value,
                                                 _DTYPE.value, _LIMIT_GIB.value)
    import jax
    import jax.numpy as jnp

    from mantra_jax.models.config import model_from_config
    from mantra_jax.models.compute import for_platform
    from mantra_jax.train.optimizer import adam
    from mantra_jax.train.preflight import HEADROOM, scaled_estimate
    from mantra_jax.train.state import create_train_state, init_variables
    from mantra_jax.train.step import make_train_step
    from mantra_jax.train.tasks import imc_task, localisation_task

    cfg = {"kind": "mantranet" if kind == "hr" else "imc", "variant": variant, "dtype": dtype}
    model = for_platform(model_from_config(cfg), "cuda")
    task = localisation_task() if kind == "hr" else imc_task()
    tx = adam()
    state = jax.eval_shape(lambda: create_train_state(init_variables(model, 0), tx, 0))

    def batch_of(b: int) -> dict:
        spec = {"image": jax.ShapeDtypeStruct((b, s, s, 3), jnp.uint8)}
        if kind == "hr":
            spec.update(mask=jax.ShapeDtypeStruct((b, s, s, 1), jnp.uint8), kind=jax.ShapeDtypeStruct((b,), jnp.int32))
        else:
            spec["label"] = jax.ShapeDtypeStruct((b,), jnp.int32)
        return spec

    build = lambda k: jax.jit(make_train_step(model, task.loss_fn, tx, micro_batches=k), donate_argnums=0)  # noqa: E731
    t0 = time.perf_counter()
    est = scaled_estimate(build, state, batch_of, batch)
    gb = est["bytes"] / 1e9
    limit = limit_gib * 2**30
    k = 1
    while est["bytes_at_1"] + (batch / k - 1) * est["bytes_per_sample"] > HEADROOM * limit and k < batch:
        k *= 2
    print(f"{variant} {kind} step, {dtype}, batch {batch} x {s}^2: about {gb:.1f} GB "
          f"({est['bytes_per_sample'] / 1e9:.2f} GB per sample, from CPU compiles at batch 1 and 2 in "
          f"{time.perf_counter() - t0:.0f} s); on a {limit_gib:g} GiB device the preflight needs "
          f"{k} micro-batch(es) of {math.ceil(batch / k)}")
    return 0


if __name__ == "__main__":
    script_main(main)
