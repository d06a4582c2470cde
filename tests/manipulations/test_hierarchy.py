"""The embedded hierarchy, the 5 sharpening additions and the per-level mappings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mantra_jax.manipulations import hierarchy
from mantra_jax.manipulations.contrast import SHARPEN_AMOUNTS, sharpen_name
from tests.conftest import shared_absent, shared_dir


def _csv_text() -> str:
    """The figure's leaves as csv text in the transcription's format."""
    rows = ["leaf_id,name,family,parameter,L1,L2,L3,L4,L5"]
    rows += [",".join([str(leaf.leaf_id), leaf.name, leaf.family, leaf.parameter, *map(str, leaf.path)])
             for leaf in hierarchy.figure_leaves()]
    return "\n".join(rows) + "\n"


def test_rendered_tree_equals_the_shared_transcription():
    shared = shared_dir() / "spec" / "imc_hierarchy.csv"
    if not shared.exists():
        shared_absent(f"{shared} is absent")
    assert _csv_text() == shared.read_text(encoding="utf-8")


def test_figure_has_380_leaves_and_its_published_node_counts():
    figure = hierarchy.figure_leaves()
    assert len(figure) == 380
    counts = [len({leaf.path[i] for leaf in figure}) for i in range(5)]
    assert counts == [7, 27, 49, 96, 191]


def test_node_counts_with_the_additions():
    assert [hierarchy.num_nodes(level) for level in range(1, 7)] == [7, 28, 50, 98, 194, 385]
    assert hierarchy.num_classes() == 385


def test_level_ids_are_contiguous_from_zero():
    for level in range(1, 7):
        ids = hierarchy.level_ids(level)
        assert ids.shape == (385,) and ids.dtype == np.int32
        assert set(ids.tolist()) == set(range(hierarchy.num_nodes(level)))
        assert not ids.flags.writeable
    np.testing.assert_array_equal(hierarchy.level_ids(6), np.arange(385))


def test_each_fine_node_has_one_parent_at_every_coarser_level():
    for coarse, fine in itertools.combinations(range(1, 7), 2):
        c, f = hierarchy.level_ids(coarse), hierarchy.level_ids(fine)
        for node in range(hierarchy.num_nodes(fine)):
            parents = set(c[f == node].tolist())
            assert len(parents) == 1, (coarse, fine, node, parents)


def test_remapped_ids_are_csv_ids_minus_one():
    for level in range(1, 6):
        np.testing.assert_array_equal(hierarchy.csv_ids(level), np.arange(1, hierarchy.num_nodes(level) + 1))
        figure_ids = [leaf.path[level - 1] - 1 for leaf in hierarchy.figure_leaves()]
        assert hierarchy.level_ids(level)[:380].tolist() == figure_ids


def test_additions_are_sharpening_in_the_contrast_family():
    leaves = hierarchy.leaves()
    additions = leaves[380:]
    assert additions == hierarchy.ADDITIONS
    assert [leaf.name for leaf in additions] == [sharpen_name(a) for a in SHARPEN_AMOUNTS]
    assert [leaf.leaf_id for leaf in additions] == [381, 382, 383, 384, 385]
    contrast = {leaf.path[0] for leaf in leaves if leaf.family in ("AutoContrast", "HistEq")}
    assert contrast == {7} and {leaf.path[0] for leaf in additions} == {7}
    assert hierarchy.GROUP_NAMES[6] == "contrast"


def test_additions_have_their_own_nodes_below_level_one():
    figure = hierarchy.figure_leaves()
    for level in range(2, 6):
        new = {leaf.path[level - 1] for leaf in hierarchy.ADDITIONS}
        old = {leaf.path[level - 1] for leaf in figure}
        assert new.isdisjoint(old), level
        assert min(new) == max(old) + 1, level  # appended after the figure's ids


def test_level_onehot_sums_probabilities_per_node():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(385), size=4)
    for level in range(1, 7):
        ids = hierarchy.level_ids(level)
        expected = np.zeros((4, hierarchy.num_nodes(level)))
        for leaf, node in enumerate(ids):
            expected[:, node] += probs[:, leaf]
        got = probs @ hierarchy.level_onehot(level).astype(np.float64)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_coarsen_maps_labels_and_rejects_bad_ones():
    labels = np.array([[0, 52], [364, 384]])
    np.testing.assert_array_equal(hierarchy.coarsen(labels, 1), [[0, 1], [5, 6]])
    assert hierarchy.coarsen(np.array(384), 2) == 27
    for bad in (np.array([385]), np.array([-1]), np.array([0.5])):
        with pytest.raises(ValueError, match="labels"):
            hierarchy.coarsen(bad, 1)


@pytest.mark.parametrize("level", [0, 7, 1.5, True, "1"])
def test_bad_level_is_rejected(level):
    with pytest.raises(ValueError, match="level"):
        hierarchy.level_ids(level)


def test_node_names():
    assert hierarchy.node_names(1) == hierarchy.GROUP_NAMES
    assert hierarchy.node_names(6)[:2] == ("BoxBlur-K29", "BoxBlur-K11")
    level5 = hierarchy.node_names(5)
    assert len(level5) == 194 and level5[0] == "BoxBlur:K29,K11" and level5[-1] == "Sharpen:A2.5"
    assert "Dithering" in level5


def test_tree_check_rejects_a_node_with_two_parents():
    leaves = (hierarchy.Leaf(1, "a", "f", "", (1, 1, 1, 1, 1)),
              hierarchy.Leaf(2, "b", "f", "", (2, 2, 2, 2, 1)))
    with pytest.raises(ValueError, match="not a tree"):
        hierarchy._check_tree(leaves)
