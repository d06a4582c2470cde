"""The 385-entry catalogue: contract of every type (shape, dtype, determinism, change) and of the entries."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mantra_jax.manipulations import CATALOGUE, NAMES, by_name, hierarchy, level_ids
from mantra_jax.manipulations.catalogue import Manipulation


def test_catalogue_has_385_unique_names():
    assert isinstance(CATALOGUE, tuple)
    assert len(CATALOGUE) == 385
    assert len(set(NAMES)) == 385


def test_class_order_is_csv_rows_then_sharpening():
    figure = hierarchy.figure_leaves()
    assert [m.name for m in CATALOGUE[:380]] == [leaf.name for leaf in figure]
    assert [m.name for m in CATALOGUE[380:]] == [f"Sharpen-A{a}" for a in ("0.5", "1.0", "1.5", "2.0", "2.5")]
    assert [m.index for m in CATALOGUE] == list(range(385))
    assert CATALOGUE[0].name == "BoxBlur-K29" and CATALOGUE[364].name == "Dithering"


def test_levels_agree_with_level_ids():
    for level in range(1, 7):
        ids = level_ids(level)
        assert [m.levels[level - 1] for m in CATALOGUE] == ids.tolist()
    assert all(m.levels[-1] == m.index for m in CATALOGUE)


def test_groups_follow_level_one():
    groups = {m.group for m in CATALOGUE}
    assert groups == set(hierarchy.GROUP_NAMES)
    assert by_name("JPEGDoubleCompress-Q95/40").group == "compression"
    assert by_name("Sharpen-A1.5").group == "contrast"
    assert by_name("Dithering").parameter == ""


def test_only_noise_types_use_the_rng():
    users = {m.family for m in CATALOGUE if m.uses_rng}
    assert users == {"GaussianNoise", "ImpluseNoise", "PoissonNoise", "UniformNoise"}
    assert sum(m.uses_rng for m in CATALOGUE) == 64


def test_every_type_keeps_shape_and_dtype(photo):
    odd = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    for m in CATALOGUE:
        for image in (photo, odd):
            out = m.apply(image, np.random.default_rng(0))
            assert out.shape == image.shape and out.dtype == np.uint8, m.name
            assert out.flags.c_contiguous, m.name


def test_every_type_is_deterministic_given_the_seed(photo):
    for m in CATALOGUE:
        a = m.apply(photo, np.random.default_rng(7))
        b = m.apply(photo, np.random.default_rng(7))
        np.testing.assert_array_equal(a, b, err_msg=m.name)


def test_every_type_changes_the_photo(photo):
    unchanged = [m.name for m in CATALOGUE if np.array_equal(m.apply(photo, np.random.default_rng(3)), photo)]
    assert unchanged == []


def test_input_is_left_untouched(photo):
    image = photo.copy()  # writeable, unlike the fixture
    for m in CATALOGUE[::7]:
        out = m.apply(image, np.random.default_rng(0))
        assert out is not image and not np.shares_memory(out, image), m.name
        np.testing.assert_array_equal(image, photo, err_msg=m.name)


def test_noise_types_depend_on_the_seed_and_others_ignore_it(photo):
    for m in CATALOGUE:
        a = m.apply(photo, np.random.default_rng(1))
        b = m.apply(photo, np.random.default_rng(2))
        if m.uses_rng:
            assert not np.array_equal(a, b), m.name
        else:
            np.testing.assert_array_equal(a, b, err_msg=m.name)
            np.testing.assert_array_equal(a, m.apply(photo, None), err_msg=m.name)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((8, 8, 3), np.float32),
        np.zeros((8, 8), np.uint8),
        np.zeros((8, 8, 4), np.uint8),
        np.zeros((0, 8, 3), np.uint8),
        [[[0, 0, 0]]],
    ],
    ids=["float32", "2d", "rgba", "empty", "list"],
)
def test_bad_image_is_rejected(bad):
    for name in ("BoxBlur-K3", "AREAResize-s0.52", "JPEGCompress-Q95", "OpenMorph-S4",
                 "GaussianNoise-S3", "Quantization-C50", "Dithering", "HistEq-C2", "Sharpen-A0.5"):
        with pytest.raises(ValueError, match="image"):
            by_name(name).apply(bad, np.random.default_rng(0))


def test_noise_type_without_generator_is_rejected(photo):
    for rng in (None, 0, np.random.RandomState(0)):
        with pytest.raises(ValueError, match="Generator"):
            by_name("PoissonNoise-L5").apply(photo, rng)


def test_bad_rng_for_deterministic_type_is_rejected(photo):
    with pytest.raises(ValueError, match="Generator"):
        by_name("BoxBlur-K3").apply(photo, 42)


def test_unknown_name_is_rejected():
    with pytest.raises(ValueError, match="unknown manipulation"):
        by_name("Blur-K1")


def test_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CATALOGUE[0].name = "x"  # type: ignore[misc]
    assert isinstance(CATALOGUE[0], Manipulation)


def test_calling_an_entry_is_apply(photo):
    m = by_name("MedianBlur-K5")
    np.testing.assert_array_equal(m(photo), m.apply(photo))
