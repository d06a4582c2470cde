"""Runs 3 train steps on a 1-device and on an 8-device mesh (8 simulated CPU devices), and the 1-device run
once more in float64, and prints the parameter differences as JSON. Run as a script: XLA_FLAGS must be set
before JAX is imported.

Why a float64 run. The two float32 runs differ only by the summation order of the batch reductions (loss
mean, batch moments, gradients); how far apart that leaves them depends on the CPU and the XLA release (the
max over 250k parameters was 7e-8 on one machine, 1.4e-7 on another with SGD). So the figure that is
compared is scale-free: how far each float32 run lies from the float64 one. Sharding is right when the
8-device run is no further from the exact result than the 1-device run is (a few times, since two
summation orders do not have the same luck); a wrong all-reduce (an unaveraged or a per-device gradient,
per-device batch statistics) moves the parameters by O(lr |g|), orders of magnitude more than float32
rounding.

The float64 run is float64 throughout: the model's ``Compute(dtype=float64)`` also makes the first layer
float64 (``models/featex.py`` keeps it at least float32), so neither float32 run shares its rounding.

What float32 leaves, and what it does not. Rounding alone leaves each parameter within a few ulps of the
float64 run. But a pre-activation within rounding of zero can fall on the other side of a ReLU in one
run and not the other (measured: none in the 1-device run, one in the 8-device run's second step, which
moves b5c2's bias 1.2e-5 from float64 where rounding leaves 9e-8); such a flip changes the batch-mean
gradient by one pixel's term, at most max|term| / (B H W) = 1 / (B H W) of the gradient's scale, and so
each parameter array by at most about that share of how far the array moved. A wrong all-reduce (one
device's gradient, per-device batch statistics, a sum for a mean) moves the parameters by O(lr |g|):
a share of order 1 of how far they moved. So the figure compared is ``*_rel``: over the arrays, the
largest max |run - float64| / max |float64 - initial| (how far the array moved), for both runs.

Adam's update lr m / (sqrt(v) + eps) is scale-free: it moves every element by about lr per step, and an
element whose gradient is within a flip's term of zero can take its step the wrong way (off by up to
2 lr) in either float32 run; the parameters it moves then change every later gradient a little, so no
per-element bound holds. What sharding must not change is how many elements that happens to: the Adam
figures give the share of elements off float64 by more than lr (at least one half-step the wrong way)
and the RMS error, for both runs; mispaired shards or a wrong all-reduce send a large share the wrong way.
The losses are written out here (same formulas as mantra_jax.train.losses, which casts logits to float32
and so would cut the float64 run's gradient to float32).
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))  # the repository root, for tests.conftest
import tiny  # noqa: E402
from conftest import ToyNet, mask_batch  # noqa: E402

from mantra_jax.models.compute import Compute  # noqa: E402
from mantra_jax.train import sharding  # noqa: E402
from mantra_jax.train.state import create_train_state, init_variables  # noqa: E402
from mantra_jax.train.step import make_train_step  # noqa: E402

LR_ADAM = 1e-3
EPS32, FLOOR_ULPS = float(np.finfo(np.float32).eps), 4.0  # rounding: 4 ulps of an array's largest value


def imc_loss(outputs, batch):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(outputs["logits"], batch["label"]))


def bce_loss(outputs, batch):
    return jnp.mean(optax.sigmoid_binary_cross_entropy(outputs["pred_logits"], batch["mask"]))


def run(model, loss, variables, batches, mesh, tx, dtype=np.float32):
    cast = lambda t: jax.tree.map(lambda a: np.asarray(a, dtype) if np.issubdtype(np.asarray(a).dtype, np.floating)
                                  else np.asarray(a), t)  # noqa: E731
    state = sharding.replicate(create_train_state(cast(jax.device_get(variables)), tx, 0), mesh)
    step = sharding.jit_train_step(make_train_step(model, loss, tx), mesh)
    for batch in batches:
        state, _ = step(state, sharding.shard_batch(cast(batch), mesh))
    return jax.device_get({"params": state.params, "batch_stats": state.batch_stats}), state


def run64(model64, loss, variables, batches, mesh, tx):
    from tests.conftest import enable_x64
    with enable_x64():
        out, _ = run(model64, loss, variables, batches, mesh, tx, np.float64)
    return out


def diffs(a, b):
    return np.concatenate([np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).ravel()
                           for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))])


def relative(run_out, exact, init):
    """Largest over the arrays of (max |run - exact| - rounding) / max |exact - init|, rounding being
    ``FLOOR_ULPS`` float32 ulps of the array's largest value (arrays that did not move skipped)."""
    worst = 0.0
    for r, e, i in zip(*(jax.tree.leaves(x) for x in (run_out, exact, init))):
        e = np.asarray(e, np.float64)
        moved = np.abs(e - np.asarray(i, np.float64)).max()
        rounding = FLOOR_ULPS * EPS32 * np.abs(e).max()
        if moved > 0:
            worst = max(worst, float((np.abs(np.asarray(r, np.float64) - e).max() - rounding) / moved))
    return worst


def figures(prefix, one, eight, exact, init):
    keep = lambda v: {"params": v["params"], "batch_stats": v.get("batch_stats", {})}  # noqa: E731
    init = keep(jax.device_get(init))
    e1, e8 = diffs(one, exact), diffs(eight, exact)
    return {f"{prefix}_one_vs_f64_max": float(e1.max()), f"{prefix}_eight_vs_f64_max": float(e8.max()),
            f"{prefix}_one_rel": relative(one, exact, init), f"{prefix}_eight_rel": relative(eight, exact, init),
            f"{prefix}_count": int(e1.size)}


def adam_figures(prefix, one, eight, exact, lr):
    e1, e8 = diffs(one, exact), diffs(eight, exact)
    return {f"{prefix}_one_wrong_share": float(np.mean(e1 > lr)), f"{prefix}_eight_wrong_share": float(np.mean(e8 > lr)),
            f"{prefix}_one_rms": float(np.sqrt(np.mean(e1 ** 2))), f"{prefix}_eight_rms": float(np.sqrt(np.mean(e8 ** 2)))}


def main() -> None:
    sys.path.insert(0, str(pathlib.Path(__file__).parents[1]))
    assert jax.device_count() == 8, jax.devices()
    one, eight = sharding.make_mesh(jax.devices()[:1]), sharding.make_mesh()
    out = {}
    labels = np.arange(16, dtype=np.int32)
    split = sharding.shard_batch({"label": labels}, eight)["label"]
    out["batch_shards"] = sorted([int(s.device.id), np.asarray(s.data).tolist()] for s in split.addressable_shards)

    imc, imc64 = tiny.imc_model(), tiny.imc_model(compute=Compute(dtype=jnp.float64))  # XLA convs: half the compile
    recs = tiny.imc_records(24, 0)
    batches = [{"image": np.stack([r["image"] for r in recs[i:i + 8]]),
                "label": np.array([r["label"] for r in recs[i:i + 8]], np.int32)} for i in (0, 8, 16)]
    variables = init_variables(imc, 0)
    out["imc_pixels"] = int(np.prod(batches[0]["image"].shape[:3]))  # B H W of one step's batch
    out.update(steps=len(batches), lr_adam=LR_ADAM)  # what the test's bounds read
    for name, tx in (("sgd", optax.sgd(0.1)), ("adam", optax.adam(LR_ADAM))):
        a, _ = run(imc, imc_loss, variables, batches, one, tx)
        b, state = run(imc, imc_loss, variables, batches, eight, tx)
        exact = run64(imc64, imc_loss, variables, batches, one, tx)
        out.update(figures(f"imc_{name}", a, b, exact, variables))
        if name == "adam":
            out.update(adam_figures("imc_adam", a, b, exact, LR_ADAM))
    out["imc_sharding"] = str(state.params["Featex"]["b2c1"]["kernel"].sharding.spec)

    toy = ToyNet()
    variables = toy.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    batches = [{k: v for k, v in mask_batch(s, b=8).items() if k != "kind"} for s in range(3)]
    out["toy_pixels"] = int(np.prod(batches[0]["image"].shape[:3]))
    tx = optax.sgd(0.1)
    a, _ = run(toy, bce_loss, variables, batches, one, tx)
    b, _ = run(toy, bce_loss, variables, batches, eight, tx)
    out.update(figures("toy", a, b, run64(toy, bce_loss, variables, batches, one, tx), variables))
    out["toy_stats_moved"] = float(diffs(a["batch_stats"], variables["batch_stats"]).max())
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
