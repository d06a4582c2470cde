import json

import numpy as np
import pytest

from mantra_jax.data.imc_source import IMCSource
from mantra_jax.data.pipeline import make_loader
from mantra_jax.datasets.imc385 import imc385_config, imc385_dir, imc385_source, prepare_imc385


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A tiny fixed set from the scikit-image photos: 6 validation and 5 test samples."""
    config = imc385_config(None, validation_samples=6, test_samples=5, seed=2)
    data_dir = tmp_path_factory.mktemp("tfds")
    return config, data_dir, prepare_imc385(None, data_dir, config)


def test_prepared_records_equal_the_source_records_in_order(prepared):
    config, _, path = prepared
    for split, count in (("validation", 6), ("test", 5)):
        stored = imc385_source(path, split)
        reference = IMCSource(None, split, seed=2, num_records=count)
        assert len(stored) == count
        for j in range(count):
            record = stored[j]
            assert int(record["index"]) == j
            assert record["image"].dtype == np.uint8 and record["image"].shape == (128, 128, 3)
            np.testing.assert_array_equal(record["image"], reference[j]["image"])
            assert int(record["label"]) == int(reference[j]["label"])


def test_files_are_array_record_in_the_config_folder(prepared):
    config, data_dir, path = prepared
    assert path == imc385_dir(data_dir, config)
    names = sorted(p.name for p in path.iterdir())
    assert "imc385-validation.array_record-00000-of-00001" in names and "features.json" in names
    info = json.loads((path / "dataset_info.json").read_text())
    assert info["disableShuffling"] is True


def test_preparing_again_reuses_the_files(prepared):
    config, data_dir, path = prepared
    before = (path / "imc385-test.array_record-00000-of-00001").stat().st_mtime_ns
    assert prepare_imc385(None, data_dir, config) == path
    assert (path / "imc385-test.array_record-00000-of-00001").stat().st_mtime_ns == before


def test_stored_split_feeds_the_grain_pipeline(prepared):
    _, _, path = prepared
    batches = list(make_loader(imc385_source(path, "validation"), batch_size=3, seed=0, shuffle=False))
    assert len(batches) == 2
    assert batches[0]["image"].dtype == np.float32 and batches[0]["image"].shape == (3, 128, 128, 3)
    assert batches[0]["label"].dtype == np.int32 and batches[1]["index"].tolist() == [3, 4, 5]


def test_config_name_tracks_inputs():
    base = imc385_config(None, validation_samples=6, test_samples=5, seed=2)
    assert base.name == imc385_config(None, validation_samples=6, test_samples=5, seed=2).name
    assert base.name != imc385_config(None, validation_samples=6, test_samples=5, seed=3).name
    assert base.fingerprint != imc385_config(None, validation_samples=6, test_samples=5, seed=2,
                                             min_deviation=20).fingerprint
    assert base.fingerprint != imc385_config(None, validation_samples=6, test_samples=5, seed=2,
                                             measure="range").fingerprint


def test_unprepared_folder_raises(tmp_path):
    with pytest.raises(ValueError, match="holds no prepared dataset"):
        imc385_source(tmp_path, "validation")
    with pytest.raises(ValueError, match="split must be one of"):
        imc385_source(tmp_path, "train")
