"""The experiments' input streams on the real data pipeline (scikit-image photos, tiny settings)."""

import jax
import numpy as np
import pytest

from experiments.configs.blocks import data_block
from mantra_jax.io.images import preprocess
from mantra_jax.train.inputs import forgery_inputs, imc_inputs
from mantra_jax.train.step import device_inputs
from tests.conftest import import_or_absent


def test_imc_inputs_give_resumable_train_batches_and_a_fixed_validation_set():
    data = data_block(patch_size=256, crop_size=16, val_records=4)
    train, val = imc_inputs(data, 2)
    it = iter(train)
    batch = next(it)
    assert batch["image"].shape == (2, 16, 16, 3) and batch["image"].dtype == np.uint8
    assert batch["label"].dtype == np.int32 and ((0 <= batch["label"]) & (batch["label"] < 385)).all()
    state = it.get_state()
    following = next(it)
    it2 = iter(train)
    it2.set_state(state)
    np.testing.assert_array_equal(next(it2)["image"], following["image"])
    first = [b["label"].tolist() for b in val]
    assert len(first) == 2 and first == [b["label"].tolist() for b in val]  # same set at every evaluation


def test_forgery_inputs_give_masks_and_kinds():
    data = data_block(patch_size=64, val_records=2)
    train, val = forgery_inputs(data, 2)
    batch = next(iter(train))
    assert batch["image"].shape == (2, 64, 64, 3) and batch["mask"].shape == (2, 64, 64, 1)
    assert batch["mask"].dtype == np.uint8 and batch["kind"].dtype == np.int32
    assert set(np.unique(batch["mask"])) <= {0, 1}
    assert len(list(val)) == 1


def test_validation_set_smaller_than_a_batch_raises():
    with pytest.raises(ValueError, match="smaller than one batch"):
        imc_inputs(data_block(patch_size=256, crop_size=16, val_records=1), 2)


def test_uint8_batches_become_the_preprocessed_model_inputs_on_the_device():
    image = np.arange(256, dtype=np.uint8)[None, :, None, None].repeat(3, axis=3).reshape(1, 16, 16, 3)
    mask = (np.arange(256) % 2).astype(np.uint8).reshape(1, 16, 16, 1)
    out = jax.jit(device_inputs)({"image": image, "mask": mask, "kind": np.zeros(1, np.int32)})
    assert out["image"].dtype == np.float32 and out["mask"].dtype == np.float32
    np.testing.assert_array_equal(np.asarray(out["image"]), preprocess(image))  # every uint8 value, bit-exact
    np.testing.assert_array_equal(np.asarray(out["mask"]), mask.astype(np.float32))


def test_imc_validation_is_read_from_the_fixed_builder_prepared_once(tmp_path):
    import_or_absent("tensorflow_datasets")
    data = data_block(patch_size=256, crop_size=16, val_records=4)
    _, fixed = imc_inputs(data, 2, val_dir=tmp_path)
    [info] = tmp_path.glob("imc385/*/*/dataset_info.json")  # prepared there: validation and test splits
    written = info.stat().st_mtime_ns
    _, synthesised = imc_inputs(data, 2)
    for a, b in zip(fixed, synthesised, strict=True):
        assert sorted(a) == sorted(b) == ["image", "label"]
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    _, again = imc_inputs(data, 2, val_dir=tmp_path)  # the same settings reuse the prepared files
    assert len(list(again)) == 2 and info.stat().st_mtime_ns == written
