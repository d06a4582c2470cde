import hashlib
from collections import Counter

import pytest

from mantra_jax.data.splits import SPLITS, split_bucket, split_of


# Pinned splits of the documented rule (sha256 of the key, first 8 bytes as a big-endian integer, mod the
# sum of the ratios), worked out once with ``int(hashlib.sha256(key).hexdigest()[:16], 16) % n``: changing the
# hashing would silently move photos between splits. (key, bucket mod 10, bucket mod 3)
PINNED = [("a.jpg", 6, 1), ("Nikon_D70_0_19445.JPG", 4, 1), ("sub/dir/photo.png", 7, 0),
          ("skimage/astronaut", 2, 0), ("cam0/img_00000.jpg", 0, 1), ("x/y/\u00dcn\u00efcode.jpg", 6, 0)]


@pytest.mark.parametrize("key,mod10,mod3", PINNED)
def test_split_is_stable_for_known_keys(key, mod10, mod3):
    assert split_bucket(key, 10) == mod10 and split_bucket(key, 3) == mod3
    # the same rule computed independently, through the hex digest
    assert int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16) % 10 == mod10
    assert split_of(key) == ("train" if mod10 < 8 else "validation" if mod10 == 8 else "test")
    assert split_of(key, (1, 1, 1)) == SPLITS[mod3]


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
