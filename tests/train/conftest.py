"""Shared fixtures of the training tests: a toy Linen model with the release's constrained parameter names
(fast to compile) and small synthetic batches."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest


class ToyNet(nn.Module):
    """A tiny stand-in with the release's module and parameter names: Featex/{b1c1/bayar_kernel, w}, LADN/
    {outlierTrans/kernel, glbStd/min_std, w}, and batch-norm-like centring: by the batch mean in training
    (moving mean kept in batch_stats/LADN), by the moving mean otherwise.
    (B, H, W, 3) -> {"pred_logits": (B, H, W, 1)}."""

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> dict[str, jnp.ndarray]:
        init = nn.initializers.normal(0.5)
        featex = self.param("Featex", lambda k: {"b1c1": {"bayar_kernel": init(k, (3, 3, 3, 2))},
                                                  "w": init(k, (3, 4))})
        ladn = self.param("LADN", lambda k: {"outlierTrans": {"kernel": init(k, (1, 1, 4, 2))},
                                             "glbStd": {"min_std": jnp.full((1, 1, 1, 2), 0.1)},
                                             "w": init(k, (2, 1))})
        stats = self.variable("batch_stats", "LADN", lambda: {"mean": jnp.zeros((4,))})
        kernel = featex["b1c1"]["bayar_kernel"]
        h = jnp.tanh(x @ featex["w"] + jnp.sum(kernel) * 0.01)
        mean = jnp.mean(h, axis=(0, 1, 2)) if train else stats.value["mean"]  # batch statistics in training
        if train and not self.is_initializing():
            stats.value = {"mean": 0.9 * stats.value["mean"] + 0.1 * mean}
        h = h - mean
        z = jnp.tanh(h @ ladn["outlierTrans"]["kernel"][0, 0]) + ladn["glbStd"]["min_std"][0, 0, 0]
        return {"pred_logits": z @ ladn["w"]}


@pytest.fixture
def toy_model() -> ToyNet:
    return ToyNet()


def mask_batch(seed: int = 0, b: int = 4, size: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"image": rng.uniform(-1, 1, (b, size, size, 3)).astype(np.float32),
            "mask": (rng.uniform(size=(b, size, size, 1)) < 0.3).astype(np.float32),
            "kind": rng.integers(0, 4, b).astype(np.int32)}
