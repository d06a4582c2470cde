"""Device memory of a release-size train step, estimated on the CPU from compiles at batch 1 and 2.

    python experiments/memory_estimate.py --kind hr --size 256 --batch 64 [--dtype float32] [--limit_gib 139]

The step is the accelerator's (XLA kernel gradients, ``for_platform(model, "cuda")``) compiled for the
CPU; ``mantra_jax.train.preflight.scaled_estimate`` extrapolates its memory linearly in the batch. With
``--limit_gib`` it also says how many micro-batches the preflight would need on such a device.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="memory_estimate.py", description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="ptrain4")
    p.add_argument("--kind", choices=("hr", "imc"), default="hr")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--limit_gib", type=float, default=139.0)
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp

    from mantra_jax.io.checkpoints import model_from_config
    from mantra_jax.models.compute import for_platform
    from mantra_jax.train.optimizer import adam
    from mantra_jax.train.preflight import HEADROOM, scaled_estimate
    from mantra_jax.train.state import create_train_state, init_variables
    from mantra_jax.train.step import make_train_step
    from mantra_jax.train.tasks import imc_task, localisation_task

    cfg = ({"kind": "mantranet", "variant": args.variant, "dtype": args.dtype} if args.kind == "hr" else
           {"kind": "imc", "variant": args.variant, "dtype": args.dtype})
    model = for_platform(model_from_config(cfg), "cuda")
    task = localisation_task() if args.kind == "hr" else imc_task()
    tx = adam()
    state = jax.eval_shape(lambda: create_train_state(init_variables(model, 0), tx, 0))
    s = args.size

    def batch_of(b: int) -> dict:
        spec = {"image": jax.ShapeDtypeStruct((b, s, s, 3), jnp.uint8)}
        if args.kind == "hr":
            spec.update(mask=jax.ShapeDtypeStruct((b, s, s, 1), jnp.uint8), kind=jax.ShapeDtypeStruct((b,), jnp.int32))
        else:
            spec["label"] = jax.ShapeDtypeStruct((b,), jnp.int32)
        return spec

    build = lambda k: jax.jit(make_train_step(model, task.loss_fn, tx, micro_batches=k), donate_argnums=0)  # noqa: E731
    t0 = time.perf_counter()
    est = scaled_estimate(build, state, batch_of, args.batch)
    gb = est["bytes"] / 1e9
    limit = args.limit_gib * 2**30
    k = 1
    while est["bytes_at_1"] + (args.batch / k - 1) * est["bytes_per_sample"] > HEADROOM * limit and k < args.batch:
        k *= 2
    print(f"{args.variant} {args.kind} step, {args.dtype}, batch {args.batch} x {s}^2: about {gb:.1f} GB "
          f"({est['bytes_per_sample'] / 1e9:.2f} GB per sample, from CPU compiles at batch 1 and 2 in "
          f"{time.perf_counter() - t0:.0f} s); on a {args.limit_gib:g} GiB device the preflight needs "
          f"{k} micro-batch(es) of {math.ceil(args.batch / k)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
