import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.train.tasks import imc_task, localisation_task


def test_imc_summary_has_loss_and_every_level():
    task = imc_task({"A": np.eye(3, dtype=np.float32)[[0, 0, 1, 2]], "B": np.eye(4, dtype=np.float32)}, 4, (1, 2))
    logits = jnp.asarray([[5.0, 0, 0, 0], [0, 0, 5.0, 0]])
    batch = {"image": jnp.zeros((2, 4, 4, 3)), "label": jnp.asarray([0, 1], jnp.int32)}
    out = task.summarize({k: np.asarray(v) for k, v in task.eval_sums({"logits": logits}, batch).items()})
    assert out["B/top1"] == 0.5 and out["A/top1"] == 0.5
    assert out["B/top2"] == 1.0  # label 1 ties with 0 and 3 behind class 2: ties count as hits
    assert out["loss"] > 0 and out["ce"] == out["loss"]  # plain loss: the objective is the leaf CE
    assert task.headline == ("loss", "ce", "A/top1", "B/top1", "B/top2")


def test_imc_task_with_hierarchy_weight_adds_the_coarse_cross_entropy():
    levels = {"A": np.eye(3, dtype=np.float32)[[0, 0, 1, 2]], "B": np.eye(4, dtype=np.float32)}
    logits = jnp.asarray([[5.0, 0, 0, 0], [0, 0, 5.0, 0]])
    batch = {"image": jnp.zeros((2, 4, 4, 3)), "label": jnp.asarray([0, 1], jnp.int32)}
    task = imc_task(levels, 4, (1,), hierarchy_weight=2.0)
    out = task.summarize({k: np.asarray(v) for k, v in task.eval_sums({"logits": logits}, batch).items()})
    p = np.exp(np.asarray(logits, np.float64))
    p /= p.sum(1, keepdims=True)
    node_p = p @ levels["A"]
    coarse = -np.mean(np.log([node_p[0, 0], node_p[1, 0]]))
    np.testing.assert_allclose(out["loss"], out["ce"] + 2.0 * coarse, rtol=1e-5)
    np.testing.assert_allclose(float(task.loss_fn({"logits": logits}, batch)), out["loss"], rtol=1e-6)


def test_localisation_summary_names_every_kind():
    task = localisation_task(("splice", "copy"))
    mask = np.zeros((2, 4, 4, 1), np.float32)
    mask[0, :2] = 1
    outputs = {"pred_logits": jnp.asarray(np.where(mask > 0, 3.0, -3.0))}
    batch = {"image": jnp.zeros((2, 4, 4, 3)), "mask": jnp.asarray(mask), "kind": jnp.asarray([0, 1], jnp.int32)}
    out = task.summarize({k: np.asarray(v) for k, v in task.eval_sums(outputs, batch).items()})
    assert out["f1/splice"] == 1.0 and np.isnan(out["f1/copy"]) and out["f1/overall"] == 1.0
    assert out["auc"] == 1.0


def test_check_batch_rejects_missing_keys_and_bad_images():
    task = imc_task({"L": np.eye(2, dtype=np.float32)}, 2)
    with pytest.raises(ValueError, match="label"):
        task.check_batch({"image": np.zeros((2, 4, 4, 3), np.float32)})
    with pytest.raises(ValueError, match="float"):
        task.check_batch({"image": np.zeros((2, 4, 4, 3), np.int32), "label": np.zeros(2, np.int32)})
    with pytest.raises(ValueError, match="leading"):
        task.check_batch({"image": np.zeros((2, 4, 4, 3), np.float32), "label": np.zeros(3, np.int32)})
