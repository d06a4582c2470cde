"""Malformed Keras weight files are one-line errors naming the file and the dataset."""

import h5py
import numpy as np
import pytest

from mantra_jax.errors import CheckpointError, WeightFileError
from mantra_jax.io.checkpoints import load_model
from mantra_jax.io.keras_h5 import read_keras_h5


def _file_with_a_string_dataset(path):
    with h5py.File(path, "w") as f:
        g = f.create_group("Featex")
        g.attrs["weight_names"] = np.array(["b1c1/regular_kernel:0"], dtype=object)
        g.create_dataset("b1c1/regular_kernel:0", data=np.array(["not", "numbers"], dtype=object),
                         dtype=h5py.string_dtype())
    return path


def test_a_string_dataset_names_the_file_and_the_dataset(tmp_path):
    path = _file_with_a_string_dataset(tmp_path / "strings.h5")
    with pytest.raises(WeightFileError, match=r"strings\.h5: dataset Featex/b1c1/regular_kernel:0 holds .*not numbers"):
        read_keras_h5(path)
    with pytest.raises(CheckpointError, match=r"strings\.h5.*Featex/b1c1/regular_kernel:0") as e:
        load_model(path)
    assert "\n" not in str(e.value)
