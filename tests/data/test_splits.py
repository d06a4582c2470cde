import hashlib
from collections import Counter

import pytest

from mantra_jax.data.splits import SPLITS, split_bucket, split_of


def test_split_is_stable_for_known_keys():
    # Frozen expectations: changing the hashing would silently move photos between splits.
    got = {k: split_of(k) for k in ("a.jpg", "Nikon_D70_0_19445.JPG", "sub/dir/photo.png", "skimage/astronaut")}
    assert got == {k: split_of(k) for k in got}  # pure
    for key, split in got.items():
        bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 10
        assert split == ("train" if bucket < 8 else "validation" if bucket == 8 else "test")
    assert split_bucket("a.jpg", 10) == 6
    assert split_bucket("sub/dir/photo.png", 10) == 7


def test_split_ratios_are_close_to_8_1_1_and_partition_the_keys():
    keys = [f"cam{c}/img_{i:05d}.jpg" for c in range(5) for i in range(1000)]
    counts = Counter(split_of(k) for k in keys)
    assert set(counts) == set(SPLITS) and sum(counts.values()) == len(keys)
    assert abs(counts["train"] / len(keys) - 0.8) < 0.02
    assert abs(counts["validation"] / len(keys) - 0.1) < 0.015
    assert abs(counts["test"] / len(keys) - 0.1) < 0.015


def test_custom_ratios():
    keys = [f"{i}.png" for i in range(2000)]
    counts = Counter(split_of(k, (1, 1, 0)) for k in keys)
    assert counts["test"] == 0 and abs(counts["train"] - 1000) < 100


@pytest.mark.parametrize("ratios", [(8, 1), (0, 0, 0), (8, -1, 1), (8, 1.5, 1)])
def test_bad_ratios_raise(ratios):
    with pytest.raises(ValueError, match="ratios"):
        split_of("a.jpg", ratios)


def test_empty_key_raises():
    with pytest.raises(ValueError, match="non-empty string"):
        split_of("")
