"""The input state of a checkpoint written on another number of processes (no file of this process's name):
used when every writer saved the same one, refused with the reason otherwise."""

import json

import pytest

from mantra_jax.errors import CheckpointMismatchError
from mantra_jax.train.checkpoints import _common_data_state


def _write(folder, states):
    folder.mkdir()
    for i, state in enumerate(states):
        (folder / f"process_{i}-of-{len(states)}.json").write_text(json.dumps(state))
    return folder


def test_the_writers_common_state_is_used(tmp_path):
    assert _common_data_state(_write(tmp_path / "d", [{"next_index": 4}] * 2), "here") == {"next_index": 4}


def test_writers_with_different_states_are_refused(tmp_path):
    with pytest.raises(CheckpointMismatchError, match="2 processes whose input states differ"):
        _common_data_state(_write(tmp_path / "d", [{"next_index": 4}, {"next_index": 5}]), "here")


def test_no_state_at_all_is_refused(tmp_path):
    with pytest.raises(CheckpointMismatchError, match="no input-iterator state"):
        _common_data_state(_write(tmp_path / "d", []), "here")
