import json
import pathlib
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

from mantra_jax.train import sharding
from tests.conftest import subprocess_env

HERE = pathlib.Path(__file__).parent
# Bounds of the 8-device check, derived in sharding_check.py's docstring (which also reports the steps,
# and Adam's lr it ran with). The float64 run is float64 throughout (first layer included), so
# both float32 runs are measured against the exact result, not against a run sharing their rounding.
# Beyond a few ulps of rounding, float32 can flip a ReLU whose input is within rounding of zero; each flip
# changes the batch-mean gradient by one pixel's term, about 1 / (B H W) of it, so after `steps` steps
# each array is off by at most about steps / (B H W) of how far it moved (``*_rel``); a wrong all-reduce
# or mispaired shards are off by a share of order 1. Measured (jax 0.10.2, AMD EPYC): IMC SGD 1-device
# 6e-7, 8-device 7.2e-4 (one flip, in step 2), bound 1.5e-3; toy (tanh, no flips) 2e-7 both.
# Adam moves every element by about lr per step, and float32 sends a few the wrong way in either run
# (those whose gradient is within a flip's term of zero): the 8-device run may not send more of them the
# wrong way (off float64 by more than lr) than the 1-device run, up to the luck of which do (Poisson
# counts: 2x plus 10 elements), nor have a larger RMS error (2x plus 4 ulps). Measured: 39 of 250k
# elements between the two runs, RMS 4.1e-6 / 4.6e-6; mispaired shards send a large share the wrong way.
EPS32 = float(np.finfo(np.float32).eps)


def flip_share(result, prefix):
    return result["steps"] / result[f"{prefix}_pixels"]


def _as_exact_as_float32_allows(r, prefix, model):
    share = flip_share(r, model)
    assert r[f"{prefix}_one_rel"] <= share, r  # the bound holds for the 1-device run too
    assert r[f"{prefix}_eight_rel"] <= share, r


@pytest.fixture(scope="module")
def eight_device_result():
    env = subprocess_env()
    proc = subprocess.run([sys.executable, str(HERE / "sharding_check.py")], capture_output=True, text=True,
                          env=env, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.slow
def test_eight_devices_give_the_same_parameters_as_one(eight_device_result):
    result = eight_device_result
    assert result["imc_sharding"] in ("PartitionSpec()", "P()")  # parameters replicated
    _as_exact_as_float32_allows(result, "imc_sgd", "imc")
    r, few = result, 10 / result["imc_adam_count"]
    assert r["imc_adam_one_wrong_share"] < 0.01, r  # the 1-device run takes nearly every step the right way
    assert r["imc_adam_eight_wrong_share"] <= 2 * r["imc_adam_one_wrong_share"] + few, r
    assert r["imc_adam_eight_rms"] <= 2 * r["imc_adam_one_rms"] + 4 * EPS32, r
    _as_exact_as_float32_allows(result, "toy", "toy")
    assert result["toy_stats_moved"] > 1e-3  # batch statistics were really used and updated


@pytest.mark.slow
def test_batch_is_split_along_the_data_axis(eight_device_result):
    # on 8 simulated devices each gets its own consecutive pair of the 16 examples
    assert eight_device_result["batch_shards"] == [[d, [2 * d, 2 * d + 1]] for d in range(8)]


def test_batch_is_placed_on_the_data_axis():
    mesh = sharding.make_mesh()
    n = mesh.devices.size
    batch = {"image": np.zeros((2 * n, 4, 4, 3), np.float32), "label": np.arange(2 * n, dtype=np.int32)}
    out = sharding.shard_batch(batch, mesh)
    assert out["image"].sharding.spec == jax.sharding.PartitionSpec("data")
    np.testing.assert_array_equal(np.asarray(out["label"]), batch["label"])


def test_batch_size_must_split_over_the_devices():
    eight = types.SimpleNamespace(devices=np.empty(8, dtype=object))  # only the device count is read
    with pytest.raises(ValueError, match="not divisible"):
        sharding.local_batch_size(12, eight)
    assert sharding.local_batch_size(16, eight) == 16
