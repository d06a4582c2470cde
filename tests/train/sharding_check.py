"""Runs 3 train steps on a 1-device and on an 8-device mesh (8 simulated CPU devices) and prints parameter
differences as JSON. Run as a script: XLA_FLAGS must be set before JAX is imported.

With SGD the parameters move linearly with the gradients, so the two runs differ only by the summation
order of the batch reductions (float32 rounding). With Adam a gradient element that is a near-exact
cancellation (|g| ~ 1e-9) can change sign with the summation order, and Adam's normalised update then
differs by up to 2 * lr for that element; the Adam figures report how many elements that affects."""

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
import tiny  # noqa: E402
from conftest import ToyNet, mask_batch  # noqa: E402

from mantra_jax.models.variants import make_imc_classifier  # noqa: E402
from mantra_jax.train import sharding  # noqa: E402
from mantra_jax.train.losses import imc_cross_entropy, pixel_bce  # noqa: E402
from mantra_jax.train.state import create_train_state, init_variables  # noqa: E402
from mantra_jax.train.step import make_train_step  # noqa: E402


LR_ADAM = 1e-3


def run(model, loss, variables, batches, mesh, tx):
    state = sharding.replicate(create_train_state(variables, tx, 0), mesh)
    step = sharding.jit_train_step(make_train_step(model, loss, tx), mesh)
    for batch in batches:
        state, _ = step(state, sharding.shard_batch(batch, mesh))
    return jax.device_get({"params": state.params, "batch_stats": state.batch_stats}), state


def diffs(a, b):
    return np.concatenate([np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).ravel()
                           for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))])


def max_diff(a, b):
    return float(diffs(a, b).max())


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    one, eight = sharding.make_mesh(jax.devices()[:1]), sharding.make_mesh()
    out = {}
    imc = make_imc_classifier("tiny", num_classes=tiny.NUM_CLASSES)
    recs = tiny.imc_records(24, 0)
    batches = [{"image": np.stack([r["image"] for r in recs[i:i + 8]]),
                "label": np.array([r["label"] for r in recs[i:i + 8]], np.int32)} for i in (0, 8, 16)]
    variables = init_variables(imc, 0)
    for name, tx in (("sgd", optax.sgd(0.1)), ("adam", optax.adam(LR_ADAM))):
        a, _ = run(imc, imc_cross_entropy, variables, batches, one, tx)
        b, state = run(imc, imc_cross_entropy, variables, batches, eight, tx)
        d = diffs(a, b)
        out[f"imc_{name}_max"] = float(d.max())
        out[f"imc_{name}_frac_above_1e-5"] = float(np.mean(d > 1e-5))
        out[f"imc_{name}_frac_above_1e-4"] = float(np.mean(d > 1e-4))
    out["imc_sharding"] = str(state.params["Featex"]["b2c1"]["kernel"].sharding.spec)
    toy = ToyNet()
    variables = toy.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    batches = [{k: v for k, v in mask_batch(s, b=8).items() if k != "kind"} for s in range(3)]
    a, _ = run(toy, pixel_bce, variables, batches, one, optax.adam(LR_ADAM))
    b, _ = run(toy, pixel_bce, variables, batches, eight, optax.adam(LR_ADAM))
    out["toy"] = max_diff(a, b)
    out["toy_stats_moved"] = max_diff(a["batch_stats"], variables["batch_stats"])
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
