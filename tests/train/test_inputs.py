"""The experiments' input streams on the real data pipeline (scikit-image photos, tiny settings)."""

import numpy as np
import pytest

from mantra_jax.train.inputs import ProcessShard, forgery_inputs, imc_inputs


def test_process_shard_reads_every_count_th_record():
    shard = ProcessShard(list(range(10)), 1, 3)
    assert len(shard) == 3 and [shard[i] for i in range(3)] == [1, 4, 7]
    with pytest.raises(IndexError):
        shard[3]
    with pytest.raises(ValueError):
        ProcessShard(list(range(10)), 3, 3)


def test_imc_inputs_give_resumable_train_batches_and_a_fixed_validation_set():
    data = {"photos": "", "patch_size": 256, "crop_size": 16, "val_records": 4, "seed": 0, "val_seed": 1}
    train, val = imc_inputs(data, 2)
    it = iter(train)
    batch = next(it)
    assert batch["image"].shape == (2, 16, 16, 3) and batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int32 and ((0 <= batch["label"]) & (batch["label"] < 385)).all()
    state = it.get_state()
    following = next(it)
    it2 = iter(train)
    it2.set_state(state)
    np.testing.assert_array_equal(next(it2)["image"], following["image"])
    first = [b["label"].tolist() for b in val]
    assert len(first) == 2 and first == [b["label"].tolist() for b in val]  # same set at every evaluation


def test_forgery_inputs_give_masks_and_kinds():
    data = {"photos": "", "patch_size": 64, "val_records": 2}
    train, val = forgery_inputs(data, 2)
    batch = next(iter(train))
    assert batch["image"].shape == (2, 64, 64, 3) and batch["mask"].shape == (2, 64, 64, 1)
    assert set(np.unique(batch["mask"])) <= {0.0, 1.0} and batch["kind"].dtype == np.int32
    assert len(list(val)) == 1


def test_validation_set_smaller_than_a_batch_raises():
    with pytest.raises(ValueError, match="smaller than one batch"):
        imc_inputs({"patch_size": 256, "crop_size": 16, "val_records": 1}, 2)
