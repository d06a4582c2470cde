import json

import numpy as np
import pytest

from mantra_jax.data.imc_source import IMCSource
from mantra_jax.data.pipeline import make_loader, to_model_inputs
from tests.data.conftest import synthetic_bank


class _Indexed:
    """A trivial source: record i is a 2x2 image filled with i % 256 and its index."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"image": np.full((2, 2, 3), i % 256, np.uint8), "label": np.int32(i % 7), "index": np.int64(i)}


def _take(iterator, k):
    return [next(iterator) for _ in range(k)]


def _close(iterator):
    if hasattr(iterator, "close"):
        iterator.close()


def test_to_model_inputs_scales_images_and_masks():
    batch = {"image": np.array([[[[0, 255, 51]]]], np.uint8), "mask": np.ones((1, 1, 1, 1), np.uint8),
             "label": np.array([3], np.int64), "kind": np.array([1]), "index": np.array([9])}
    out = to_model_inputs(batch)
    np.testing.assert_allclose(out["image"], [[[[-1.0, 1.0, 51 / 255 * 2 - 1]]]], atol=1e-7)
    assert out["image"].dtype == np.float32 and out["mask"].dtype == np.float32
    assert out["label"].dtype == np.int32 and out["kind"].dtype == np.int32 and out["index"][0] == 9
    with pytest.raises(ValueError, match="mask must be uint8"):
        to_model_inputs({"image": batch["image"], "mask": np.ones((1, 1, 1), np.uint8)})


def test_each_epoch_is_a_reshuffled_pass_over_all_records():
    it = iter(make_loader(_Indexed(24), batch_size=4, seed=1, num_epochs=2))
    batches = list(it)
    assert len(batches) == 12
    first = np.concatenate([b["index"] for b in batches[:6]])
    second = np.concatenate([b["index"] for b in batches[6:]])
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(24))
    assert first.tolist() != list(range(24)) and first.tolist() != second.tolist()
    assert batches[0]["image"].shape == (4, 2, 2, 3) and batches[0]["label"].dtype == np.int32


def test_same_seed_same_batches_other_seed_other_order():
    a = [b["index"].tolist() for b in make_loader(_Indexed(20), batch_size=5, seed=3)]
    b = [b["index"].tolist() for b in make_loader(_Indexed(20), batch_size=5, seed=3)]
    c = [b["index"].tolist() for b in make_loader(_Indexed(20), batch_size=5, seed=4)]
    assert a == b and a != c
    plain = [b["index"].tolist() for b in make_loader(_Indexed(20), batch_size=5, seed=3, shuffle=False)]
    assert plain[0] == [0, 1, 2, 3, 4]


def test_state_saved_mid_stream_restores_the_same_next_batches(tmp_path):
    loader = make_loader(_Indexed(50), batch_size=4, seed=2, num_epochs=None)
    it = iter(loader)
    _take(it, 5)
    (tmp_path / "state.json").write_text(json.dumps(it.get_state()))  # JSON-able
    expected = _take(it, 15)  # crosses epoch boundaries
    restored = iter(make_loader(_Indexed(50), batch_size=4, seed=2, num_epochs=None))
    restored.set_state(json.loads((tmp_path / "state.json").read_text()))
    for a, b in zip(expected, _take(restored, 15)):
        np.testing.assert_array_equal(a["index"], b["index"])
        np.testing.assert_array_equal(a["image"], b["image"])


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="bad loader settings"):
        make_loader(_Indexed(4), batch_size=0, seed=0)
    with pytest.raises(ValueError, match="num_epochs"):
        make_loader(_Indexed(4), batch_size=1, seed=0, num_epochs=0)


def test_batches_identical_for_0_and_2_workers_and_state_restores_with_workers():
    # The one multiprocessing test (process start-up dominates its ~15 s).
    source = IMCSource(synthetic_bank(n=6, size=48), "train", seed=5, crop_size=32, num_records=40)
    kwargs = dict(batch_size=4, seed=9, num_epochs=None)
    serial = _take(iter(make_loader(source, worker_count=0, **kwargs)), 5)
    it = iter(make_loader(source, worker_count=2, **kwargs))
    parallel = _take(it, 3)
    state = it.get_state()
    parallel += _take(it, 2)
    _close(it)
    for a, b in zip(serial, parallel):
        assert a["image"].dtype == np.float32 and a["image"].shape == (4, 32, 32, 3)
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    restored = iter(make_loader(source, worker_count=2, **kwargs))
    restored.set_state(state)
    for a, b in zip(serial[3:], _take(restored, 2)):
        np.testing.assert_array_equal(a["image"], b["image"])
    _close(restored)


@pytest.mark.parametrize("count", [2, 4])
def test_processes_parts_make_up_the_global_batches_of_one_process(count):
    # 3 epochs of 10 records in global batches of 4 (batches span epochs; the last 2 records are dropped
    # as with one process); process p's batch k is the p-th consecutive part of one-process batch k, by key
    source, kwargs = _Indexed(10), dict(batch_size=4, seed=3, num_epochs=3, device_preprocess=True)
    single = [b["index"].tolist() for b in make_loader(source, **kwargs)]
    parts = [[b["index"].tolist() for b in make_loader(source, process_index=p, process_count=count, **kwargs)]
             for p in range(count)]
    assert len(single) == 7 and all(len(p) == len(single) for p in parts)
    for k, batch in enumerate(single):
        assert sum((parts[p][k] for p in range(count)), []) == batch
    # a state (batches read) resumes on another topology: after 2 one-process batches, batch 2 in part
    it = iter(make_loader(source, **kwargs))
    _take(it, 2)
    other = iter(make_loader(source, process_index=count - 1, process_count=count, **kwargs))
    other.set_state(it.get_state())
    assert next(other)["index"].tolist() == single[2][-(4 // count):]


def test_a_global_batch_must_split_over_the_processes():
    with pytest.raises(ValueError, match="does not split"):
        make_loader(_Indexed(10), batch_size=4, seed=0, process_index=0, process_count=3)
    with pytest.raises(ValueError, match="does not split"):
        make_loader(_Indexed(10), batch_size=4, seed=0, process_index=0, process_count=2, drop_remainder=False)
    with pytest.raises(ValueError, match="not in"):
        make_loader(_Indexed(10), batch_size=4, seed=0, process_index=2, process_count=2)
