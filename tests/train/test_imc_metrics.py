import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.train.imc_metrics import check_levels, hierarchy_levels, imc_batch_sums, summarize_imc


def _reference(logits, labels, m, k):
    """float64: node probabilities = summed leaf probabilities; hit when the true node is among the k
    most probable nodes (sorted explicitly)."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    node_p = p @ m
    nodes = m.argmax(1)
    hits = 0
    for i, y in enumerate(labels):
        order = np.argsort(-node_p[i], kind="stable")
        hits += nodes[y] in order[:k]
    return hits


def test_hits_match_float64_reference_at_every_level_and_k():
    rng = np.random.default_rng(0)
    c = 12
    levels = {"coarse": np.eye(3, dtype=np.float32)[np.repeat(np.arange(3), 4)],
              "mid": np.eye(6, dtype=np.float32)[np.repeat(np.arange(6), 2)],
              "leaf": np.eye(c, dtype=np.float32)}
    logits = rng.normal(size=(64, c)) * 2
    labels = rng.integers(0, c, 64)
    sums = imc_batch_sums(jnp.asarray(logits, jnp.float32), jnp.asarray(labels, jnp.int32), levels, (1, 2, 3, 5))
    for name, m in levels.items():
        for k in (1, 2, 3, 5):
            assert int(sums[f"{name}/top{k}"]) == _reference(logits, labels, m.astype(np.float64), k), (name, k)
    assert int(sums["count"]) == 64


def test_coarse_level_uses_summed_not_max_probability():
    # Leaves 0,1 form node A, leaf 2 node B. p = (0.3, 0.3, 0.4): B has the largest leaf, A the largest sum.
    levels = {"L": np.array([[1, 0], [1, 0], [0, 1]], np.float32)}
    logits = jnp.log(jnp.array([[0.3, 0.3, 0.4]]))
    assert int(imc_batch_sums(logits, jnp.array([0]), levels, (1,))["L/top1"]) == 1
    assert int(imc_batch_sums(logits, jnp.array([2]), levels, (1,))["L/top1"]) == 0


def test_k_at_least_the_number_of_nodes_always_hits():
    levels = {"L": np.eye(3, dtype=np.float32)}
    sums = imc_batch_sums(jnp.zeros((5, 3)).at[:, 0].set(9.0), jnp.array([1, 2, 1, 2, 0]), levels, (10,))
    assert int(sums["L/top10"]) == 5


def test_summarize_divides_by_count():
    assert summarize_imc({"count": 4, "L/top1": 3, "loss_sum": 1.0}) == {"L/top1": 0.75}


def test_project_hierarchy_has_paper_level_names_and_385_classes():
    levels = hierarchy_levels()
    assert list(levels) == ["HL0", "HL1", "HL2", "HL3", "HL4", "HL5"]
    assert [m.shape[1] for m in levels.values()] == [7, 28, 50, 98, 194, 385]
    check_levels(levels, 385)


def test_bad_level_matrix_raises():
    with pytest.raises(ValueError, match="exactly one"):
        check_levels({"L": np.ones((3, 2), np.float32)}, 3)
    with pytest.raises(ValueError, match="matrix"):
        check_levels({"L": np.eye(4, dtype=np.float32)}, 3)


def test_nan_logits_are_never_counted_as_hits():
    import jax.numpy as jnp

    levels = {"leaf": np.eye(4, dtype=np.float32)}
    logits = jnp.asarray([[np.nan] * 4, [5.0, 0.0, 0.0, 0.0], [0.0, np.nan, 0.0, 0.0]], jnp.float32)
    sums = imc_batch_sums(logits, jnp.asarray([0, 0, 2]), levels, top_k=(1, 4))
    assert int(sums["leaf/top1"]) == 1 and int(sums["leaf/top4"]) == 1 and int(sums["count"]) == 3
