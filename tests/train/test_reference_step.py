"""One train step of small models against an independent float64 reference.

The reference is a hand-written forward pass (plain jnp on float64 arrays: symmetric padding, convolutions,
batch-norm with batch moments, in-image window means by explicit sums and counts, time-axis Z-scores,
ConvLSTM, losses) differentiated by JAX in float64. It shares no code with mantra_jax except the SRM filter
constants. With plain SGD the step must move every unconstrained parameter by -lr * gradient.

Tolerance: the float32 step's gradient differs from the float64 one by rounding in the forward and
backward passes: ~2 L sqrt(K) u of the gradient's scale for L chained K-term sums (random-walk model), the
longest sums here being the batch reductions of the kernel gradients (K = B H W x fan-in). Reading the step
back as (p0 - p1) / lr adds the rounding of p1, u |p| / lr. Both are computed per leaf below.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mantra_jax.models.featex import FeatexConfig
from mantra_jax.models.mantranet import IMCClassifier, ManTraNet
from mantra_jax.ops.srm import srm_kernel
from mantra_jax.train.state import create_train_state
from mantra_jax.train.step import make_train_step
from mantra_jax.train.tasks import imc_task, localisation_task
from tests.conftest import enable_x64
from tests.infer.conftest import init

U = 2.0 ** -24
LR = 1.0
B, S = 2, 12  # batch, image side


def conv(x, k, b=None, pad="symmetric"):
    p = k.shape[0] // 2
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode=pad) if pad == "symmetric" else \
        jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    y = jax.lax.conv_general_dilated(xp, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST)
    return y if b is None else y + b


def featex(p, x, trunk):
    b1 = p["b1c1"]
    y = jax.nn.relu(conv(x, jnp.concatenate([b1["regular_kernel"], jnp.asarray(srm_kernel(), x.dtype),
                                             b1["bayar_kernel"]], -1)))
    for block, widths in enumerate(trunk, start=1):
        for j in range(len(widths)):
            layer = p[f"b{block}c{j + (2 if block == 1 else 1)}"]
            y = jax.nn.relu(conv(y, layer["kernel"], layer["bias"]))
    y = conv(y, p["transform"]["kernel"], p["transform"]["bias"])
    return y / jnp.sqrt(jnp.maximum(jnp.sum(y * y, -1, keepdims=True), 1e-12))


def imc_loss64(params, batch, trunk):
    f = featex(params["Featex"], batch["image"], trunk)
    logits = jnp.mean(conv(f, params["IMCHead"]["kernel"], params["IMCHead"]["bias"]), axis=(1, 2))
    picked = jnp.take_along_axis(logits, batch["label"][:, None], 1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, -1) - picked)


def window_mean(x, n):
    r = n // 2
    pad = ((0, 0), (r, r), (r, r), (0, 0))
    total = jax.lax.reduce_window(jnp.pad(x, pad), 0.0, jax.lax.add, (1, n, n, 1), (1, 1, 1, 1), "VALID")
    count = jax.lax.reduce_window(jnp.pad(jnp.ones_like(x[:1, ..., :1]), pad), 0.0, jax.lax.add, (1, n, n, 1),
                                  (1, 1, 1, 1), "VALID")
    return total / count


def loc_loss64(params, batch, trunk, windows):
    f = featex(params["Featex"], batch["image"], trunk)
    ladn = params["LADN"]
    x = conv(f, ladn["outlierTrans"]["kernel"])
    mean = jnp.mean(x, (0, 1, 2))
    var = jnp.mean((x - mean) ** 2, (0, 1, 2))
    x = (x - mean) / jnp.sqrt(var + 1e-3)  # train mode: batch moments, Keras epsilon
    mu = jnp.mean(x, (1, 2), keepdims=True)
    sigma = jnp.maximum(jnp.sqrt(jnp.mean((x - mu) ** 2, (1, 2), keepdims=True)), 1e-6 + ladn["glbStd"]["min_std"])
    feats = [jnp.abs((window_mean(x, n) - x) / sigma) for n in windows] + [jnp.abs((mu - x) / sigma)]
    lstm = ladn["cLSTM"]
    fd = lstm["recurrent_kernel"].shape[2]
    h = c = jnp.zeros(x.shape[:3] + (fd,), x.dtype)
    hard = lambda v: jnp.clip(0.2 * v + 0.5, 0.0, 1.0)  # noqa: E731
    for xt in feats:
        z = conv(xt, lstm["kernel"], lstm["bias"], pad="zero") + conv(h, lstm["recurrent_kernel"], pad="zero")
        zi, zf, zc, zo = (z[..., g * fd:(g + 1) * fd] for g in range(4))
        c = hard(zf) * c + hard(zi) * jnp.tanh(zc)
        h = hard(zo) * jnp.tanh(c)
    logits = conv(h, ladn["pred"]["kernel"], ladn["pred"]["bias"], pad="zero")
    y = batch["mask"]
    return jnp.mean(jnp.maximum(logits, 0) - logits * y + jnp.log1p(jnp.exp(-jnp.abs(logits))))


def one_step(model, task, variables, batch):
    tx = optax.sgd(LR)
    state = create_train_state(variables, tx, 0)
    new, _ = jax.jit(make_train_step(model, task.loss_fn, tx))(state, batch)
    return jax.device_get(state.params), jax.device_get(new.params)


def grad64(loss, params, batch):
    with enable_x64():
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        b64 = {k: jnp.asarray(v, jnp.float64 if v.dtype.kind == "f" else v.dtype) for k, v in batch.items()}
        return jax.device_get(jax.grad(loss)(p64, b64))


def check_step(p0, p1, g64, longest_sum, depth, constrained):
    """Every unconstrained leaf moved by -LR * g64 within the float32 bound (module docstring)."""
    flat0 = dict(jax.tree_util.tree_leaves_with_path(p0))
    flat1 = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(p1)}
    g = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(g64)}
    checked = 0
    for path, a in flat0.items():
        name = jax.tree_util.keystr(path)
        if any(c in name for c in constrained):
            continue
        step = (np.asarray(a, np.float64) - np.asarray(flat1[name], np.float64)) / LR
        scale = np.abs(g[name]).max()
        tol = 2 * depth * np.sqrt(longest_sum) * U * scale + 2 * U * np.abs(a).max() / LR
        err = np.abs(step - g[name]).max()
        assert err <= tol, (name, err, tol, scale)
        checked += scale > 0
    return checked


@pytest.mark.slow
def test_imc_step_matches_float64_hand_written_gradient():
    trunk = ((4,), (4,))
    model = IMCClassifier(num_classes=3, featex=FeatexConfig(plain_filters=2, trunk=trunk, transform_features=8))
    v = init(model, 3)
    rng = np.random.default_rng(0)
    batch = {"image": rng.uniform(-1, 1, (B, S, S, 3)).astype(np.float32), "label": np.array([0, 2], np.int32)}
    p0, p1 = one_step(model, imc_task({"leaf": np.eye(3, dtype=np.float32)}, 3), v, batch)
    g = grad64(lambda p, b: imc_loss64(p, b, trunk), p0, batch)
    n = check_step(p0, p1, g, B * S * S * 9 * 8, depth=2 * (len(trunk) + 3), constrained=("bayar_kernel",))
    assert n >= 8  # the plain first-layer kernel, every trunk layer, transform and head moved


@pytest.mark.slow
def test_localisation_step_matches_float64_hand_written_gradient():
    trunk, windows = ((4,),), (3, 5)
    model = ManTraNet(featex=FeatexConfig(plain_filters=2, trunk=trunk, transform_features=8), windows=windows)
    v = init(model, 4)
    rng = np.random.default_rng(1)
    mask = np.zeros((B, S, S, 1), np.float32)
    mask[:, 3:8, 4:9] = 1
    batch = {"image": rng.uniform(-1, 1, (B, S, S, 3)).astype(np.float32), "mask": mask,
             "kind": np.zeros((B,), np.int32)}
    p0, p1 = one_step(model, localisation_task(), v, batch)
    g = grad64(lambda p, b: loc_loss64(p, b, trunk, windows), p0, batch)
    n = check_step(p0, p1, g, B * S * S * 7 * 7 * 64, depth=2 * (len(trunk) + 3 + len(windows) + 2),
                   constrained=("bayar_kernel", "outlierTrans", "min_std"))
    assert n >= 7  # featex kernels, the LSTM's kernels and bias, pred
