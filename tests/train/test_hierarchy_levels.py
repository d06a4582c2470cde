"""IMC training at a hierarchy level: levels and class counts, the label mapping, the coarser-level
matrices, and the task's metrics against a plain numpy computation."""

import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.manipulations import hierarchy
from mantra_jax.train import hierarchy_levels as hl


def test_level_and_class_count_follow_each_other():
    assert [hl.level_classes(n) for n in hl.LEVELS] == [7, 28, 50, 98, 194, 385]
    assert hl.resolve_level() == ("HL5", 385)
    assert hl.resolve_level("hl1") == ("HL1", 28)
    assert hl.resolve_level(num_classes=25) == ("HL1", 28)  # the paper's count of the level
    assert hl.resolve_level(num_classes=50) == ("HL2", 50)
    with pytest.raises(ValueError, match="does not match"):
        hl.resolve_level("HL0", 385)
    with pytest.raises(ValueError, match="no hierarchy level"):
        hl.resolve_level(num_classes=12)
    with pytest.raises(ValueError, match="HL0"):
        hl.resolve_level("HL7")


def test_level_matrices_map_every_node_to_its_ancestors():
    for i, name in enumerate(hl.LEVELS):
        mats = hl.level_matrices(name)
        assert list(mats) == list(hl.LEVELS[:i + 1])
        fine = hierarchy.coarsen(np.arange(385), i + 1)
        for j, m in enumerate(mats.values()):
            assert m.shape == (hl.level_classes(i), hl.level_classes(j)) and (m.sum(axis=1) == 1).all()
            np.testing.assert_array_equal(np.argmax(m, axis=1)[fine], hierarchy.coarsen(np.arange(385), j + 1))
        np.testing.assert_array_equal(mats[name], np.eye(hl.level_classes(i)))


def test_level_task_scores_leaf_labels_at_its_level_and_coarser():
    rng = np.random.default_rng(0)
    n = hl.level_classes("HL1")
    logits = rng.normal(size=(32, n)).astype(np.float32)
    leaves = rng.integers(0, 385, 32)
    task = hl.level_task("HL1")
    batch = {"image": jnp.zeros((32, 4, 4, 3)), "label": jnp.asarray(leaves, jnp.int32)}
    metrics = task.summarize({k: np.asarray(v) for k, v in task.eval_sums({"logits": jnp.asarray(logits)}, batch).items()})
    node = hierarchy.coarsen(leaves, 2)
    assert metrics["HL1/top1"] == pytest.approx(np.mean(np.argmax(logits, 1) == node))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    family = np.zeros((32, 7))
    np.add.at(family.T, hl.level_matrices("HL1")["HL0"].argmax(1), p.T)  # sum the HL1 nodes of each family
    assert metrics["HL0/top1"] == pytest.approx(np.mean(np.argmax(family, 1) == hierarchy.coarsen(leaves, 1)))
    ce = -np.mean(np.log(p[np.arange(32), node]))
    assert metrics["loss"] == pytest.approx(ce, rel=1e-5) and "HL2/top1" not in metrics
