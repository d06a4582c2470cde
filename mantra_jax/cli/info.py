"""``mantra info``: variant, parameter counts, FLOPs per megapixel and halo of a checkpoint."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mantra_jax.cli.common import EXIT_OK

FLOPS_SIZE = 256  # side of the square the FLOPs are counted at (``mantra info --size``'s default)


def model_info(model: Any, variables: Any, cfg: dict[str, Any], size: int = FLOPS_SIZE) -> dict[str, Any]:
    """Config, parameter counts, FLOPs per megapixel (XLA cost analysis at size x size) and the halo."""
    import jax
    import jax.numpy as jnp

    from mantra_jax.io.variables import parameter_count
    from mantra_jax.models.compute import with_choices

    info: dict[str, Any] = {"config": cfg, "parameters": parameter_count(variables)}
    # the network's nominal FLOPs: direct convolutions (CPU inference runs fewer, through Winograd; ops.conv)
    nominal = with_choices(model, conv_algorithm="direct")
    if cfg["kind"] == "mantranet":
        from mantra_jax.infer.halo import receptive_halo
        from mantra_jax.infer.whole import compiled_cost

        cost = compiled_cost(nominal, variables, size, size)
        info["receptive_halo"] = receptive_halo(model).total
    else:
        from mantra_jax.perf import cost_dict

        x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
        cost = cost_dict(jax.jit(lambda v, a: nominal.apply(v, a)["logits"]).lower(variables, x).compile())
    flops = float(cost.get("flops", float("nan")))
    info["flops_per_megapixel"] = flops / (size * size) * 1e6
    info["flops_measured_at"] = [size, size]
    return info


def cmd_info(args: argparse.Namespace) -> int:
    from mantra_jax.io.checkpoints import load_model

    model, variables, cfg = load_model(args.checkpoint)
    info = {"checkpoint": str(args.checkpoint), **model_info(model, variables, cfg, args.size)}
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    c = info["config"]
    print(f"checkpoint:          {args.checkpoint}")
    print(f"kind:                {c['kind']}")
    print(f"variant:             {c['variant']}")
    if c["kind"] == "mantranet":
        print(f"windows:             {', '.join(map(str, c['windows']))}")
        print(f"anomaly feature:     {c['anomaly_feature']}")
        print(f"receptive halo:      {info['receptive_halo']} px (tiled inference)")
    else:
        print(f"classes:             {c['num_classes']}")
    p = info["parameters"]
    print(f"parameters:          {p.get('params', 0):,} trainable + {p.get('batch_stats', 0):,} statistics")
    print(f"FLOPs per megapixel: {info['flops_per_megapixel'] / 1e12:.2f} TFLOP (XLA cost analysis at "
          f"{args.size}x{args.size}, direct convolutions)")
    return EXIT_OK
