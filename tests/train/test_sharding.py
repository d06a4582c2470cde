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
EPS32 = float(np.finfo(np.float32).eps)
STEPS, LR_ADAM = 3, 1e-3
# Tolerances of the 8-device check (see sharding_check.py): machine-independent because each float32 run
# is measured against a float64 run of the same steps. The 8-device run must be as close to float64 as the
# 1-device run, up to the luck of two summation orders: its max error within 4x the 1-device max error and
# its RMS error (over 250k parameters, a stable statistic) within 2x, plus a floor of 4 ulps of the
# parameter scale. Measured: IMC SGD max 1.9e-7 both, toy 5.2e-7 both (3.12/jax 0.12, AMD EPYC).
# With Adam a near-cancelling gradient element can flip sign between summation orders and move by up to
# 2 lr per step, so the max is bounded by 2 lr STEPS and only the RMS ratio is compared.
MAX_RATIO, RMS_RATIO, FLOOR_ULPS = 4.0, 2.0, 4.0


def _no_worse_than_one_device(r, prefix, use_max=True):
    floor = FLOOR_ULPS * EPS32 * r[f"{prefix}_scale"]
    assert r[f"{prefix}_eight_vs_f64_rms"] <= RMS_RATIO * r[f"{prefix}_one_vs_f64_rms"] + floor, r
    if use_max:
        assert r[f"{prefix}_eight_vs_f64_max"] <= MAX_RATIO * r[f"{prefix}_one_vs_f64_max"] + floor, r


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
    _no_worse_than_one_device(result, "imc_sgd")
    _no_worse_than_one_device(result, "imc_adam", use_max=False)
    assert result["imc_adam_max"] < 2 * LR_ADAM * STEPS, result
    _no_worse_than_one_device(result, "toy")
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
