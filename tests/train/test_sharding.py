import json
import os
import pathlib
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

from mantra_jax.train import sharding

HERE = pathlib.Path(__file__).parent
# Tolerances of the 8-device check (see sharding_check.py). The sharded program sums the batch in another
# order. SGD (lr 0.1, 3 steps): parameters agree to float32 rounding, |diff| < 1e-6 everywhere (measured
# 7e-8). Adam (lr 1e-3, 3 steps), whose normalised update amplifies rounding in near-zero gradients: at most
# 0.5 % of the elements differ by more than 1e-4 (measured 0.06 %) and none by more than 2 * lr * steps =
# 6e-3 (measured 1.3e-3). The toy model (batch-statistics centring, Adam) agrees within 1e-6.
SGD_ATOL = 1e-6
ADAM_FRACTION, ADAM_BOUND = 5e-3, 6e-3
TOY_ATOL = 1e-6


def test_eight_devices_give_the_same_parameters_as_one():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, str(HERE / "sharding_check.py")], capture_output=True, text=True,
                          env=env, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["imc_sharding"] in ("PartitionSpec()", "P()")  # parameters replicated
    assert result["imc_sgd_max"] < SGD_ATOL, result
    assert result["imc_adam_frac_above_1e-4"] < ADAM_FRACTION and result["imc_adam_max"] < ADAM_BOUND, result
    assert result["toy"] < TOY_ATOL, result
    assert result["toy_stats_moved"] > 1e-3  # batch statistics were really used and updated


def test_batch_is_split_along_the_data_axis():
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
