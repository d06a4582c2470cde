import dataclasses

import numpy as np
import pytest

from mantra_jax.data.imc_source import IMCSource
from tests.data.conftest import synthetic_bank


@dataclasses.dataclass(frozen=True)
class _Shift:
    """A fake manipulation: adds its index (mod 256) to every pixel, so labels show in the pixels."""

    index: int

    def apply(self, image, rng):
        return (image.astype(np.int64) + self.index).astype(np.uint8)


FAKE = tuple(_Shift(i) for i in range(5))


def test_record_is_a_pure_function_of_seed_and_index(skimage_train_bank):
    a = IMCSource(skimage_train_bank, "train", seed=7)
    b = IMCSource(skimage_train_bank, "train", seed=7)
    for i in (0, 5, 4321, len(a) - 1):
        ra, rb = a[i], b[i]
        np.testing.assert_array_equal(ra["image"], rb["image"])
        assert ra["label"] == rb["label"]
    np.testing.assert_array_equal(a[3]["image"], a[3]["image"])
    assert any(not np.array_equal(a[i]["image"], IMCSource(skimage_train_bank, "train", seed=8)[i]["image"])
               for i in range(3))


def test_samples_are_128_crops_of_a_manipulated_patch_with_its_class():
    bank = synthetic_bank(n=4, size=32)
    source = IMCSource(bank, "train", seed=0, crop_size=16, catalogue=FAKE, num_records=60)
    assert len(source) == 60 and source.num_classes == 5
    labels = []
    for i in range(60):
        record = source[i]
        assert record["image"].shape == (16, 16, 3) and record["image"].dtype == np.uint8
        assert record["label"].dtype == np.int32
        label = int(record["label"])
        labels.append(label)
        shifted = (bank.patches.astype(np.int64) + label).astype(np.uint8)  # (N, 32, 32, 3)
        windows = np.lib.stride_tricks.sliding_window_view(shifted, (16, 16), axis=(1, 2))  # (N,17,17,3,16,16)
        hit = (windows == record["image"].transpose(2, 0, 1)[None, None, None]).all(axis=(3, 4, 5))
        assert hit.any()
    assert set(labels) == set(range(5))


def test_default_size_and_real_catalogue(skimage_train_bank):
    source = IMCSource(skimage_train_bank, "train", seed=0)
    assert source.num_classes == 385 and len(source) == 17 * 385
    record = source[0]
    assert record["image"].shape == (128, 128, 3) and 0 <= record["label"] < 385


def test_bad_index_and_settings_raise():
    bank = synthetic_bank()
    source = IMCSource(bank, "train", catalogue=FAKE, num_records=10, crop_size=32)
    for bad in (-1, 10):
        with pytest.raises(IndexError, match="out of range"):
            source[bad]
    with pytest.raises(ValueError, match="crop_size"):
        IMCSource(bank, "train", catalogue=FAKE, crop_size=65)
    with pytest.raises(ValueError, match="built for split 'train'"):
        IMCSource(bank, "test", catalogue=FAKE, crop_size=32)
