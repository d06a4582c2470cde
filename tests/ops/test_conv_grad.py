import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.models.compute import Compute
from mantra_jax.models.featex import FeatexConfig
from mantra_jax.models.variants import Variant, make_imc_classifier, make_mantranet
from mantra_jax.ops.conv import conv2d_symmetric
from mantra_jax.ops.conv_grad import conv_valid_matmul_grad, kernel_grad_by_taps
from tests.conftest import enable_x64
from tests.infer.conftest import init


def _kernel_grad_ref(x, dy, k):
    """Float64 numpy reference: dK[i, j] = sum_bhw x[b, h+i, w+j, :] outer dy[b, h, w, :]."""
    _, ho, wo, _ = dy.shape
    return np.stack([np.stack([np.einsum("bhwi,bhwo->io", x[:, i:i + ho, j:j + wo], dy) for j in range(k)])
                     for i in range(k)])


def test_kernel_grad_by_taps_matches_float64_reference():
    rng = np.random.default_rng(0)
    x, dy = rng.normal(size=(2, 9, 10, 3)), rng.normal(size=(2, 7, 8, 4))
    got = kernel_grad_by_taps(jnp.asarray(x, jnp.float32), jnp.asarray(dy, jnp.float32), 3, 3)
    chex.assert_trees_all_close(got, _kernel_grad_ref(x, dy, 3), atol=1e-4, rtol=1e-5)


def test_matmul_gradients_equal_autodiff_in_float64():
    with enable_x64():
        rng = np.random.default_rng(1)
        x, k = jnp.asarray(rng.normal(size=(2, 8, 9, 5))), jnp.asarray(rng.normal(size=(3, 3, 5, 6)))
        f = lambda conv: lambda a, b: jnp.sum(jnp.sin(conv(a, b)))  # noqa: E731
        auto = jax.grad(f(lambda a, b: jax.lax.conv_general_dilated(
            a, b, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))), argnums=(0, 1))(x, k)
        fast = jax.grad(f(conv_valid_matmul_grad), argnums=(0, 1))(x, k)
        chex.assert_trees_all_close(fast, auto, atol=1e-12, rtol=1e-12)


def test_symmetric_conv_modes_agree_forward_and_backward():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(2, 12, 11, 64)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(3, 3, 64, 8)) * 0.1, jnp.float32)
    loss = lambda mode: lambda a, b: jnp.sum(jnp.tanh(conv2d_symmetric(a, b, kernel_grad=mode)))  # noqa: E731
    g_xla = jax.grad(loss("xla"), argnums=(0, 1))(x, k)
    g_mm = jax.grad(loss("matmul"), argnums=(0, 1))(x, k)
    # float32, sums over 2*12*11 = 264 products of O(1) terms: 1e-4 relative is rounding-order noise.
    chex.assert_trees_all_close(g_mm, g_xla, atol=1e-4, rtol=1e-4)


# The release's structure (combined first layer, its five trunk blocks of 1, 2, 3, 3, 2 convolutions, the
# transform) four to eight channels wide: every 3 x 3 layer stays under WINOGRAD_MIN_CHANNELS, so each one
# takes the direct path where ``kernel_grad`` applies (at tiny's 32-64 widths "auto" runs most of them as
# Winograd, whose gradients are autodiff's either way).
THIN = Variant("thin", FeatexConfig(4, ((4,), (8, 8), (8, 8, 8), (8, 8, 8), (8, 8)), 8))


def _featex_grads(model, variables, x, **apply_kwargs):
    """Gradients of a fixed random projection of the model's ``featex`` output, one compile (jit). Only the
    feature extractor's kernels see ``kernel_grad``, and a random projection weights every output element
    differently (the L2-normalised features make e.g. the mean square a constant); the LADN after it is
    dead code under jit and costs nothing to compile."""
    def loss(p):
        out = model.apply({**variables, "params": p}, x, **apply_kwargs)
        out = out[0] if isinstance(out, tuple) else out
        w = jax.random.normal(jax.random.key(7), out["featex"].shape, out["featex"].dtype)
        return jnp.sum(w * out["featex"])
    return jax.jit(jax.grad(loss))(variables["params"])


@pytest.mark.slow
def test_model_gradients_equal_with_matmul_kernel_grad():
    x = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (2, 16, 16, 3)), jnp.float32)
    m_xla, m_mm = (make_mantranet(THIN, compute=Compute(kernel_grad=k)) for k in ("xla", "matmul"))
    v = init(m_xla, 3)
    cpu = Compute().resolve("cpu").rule
    assert all(cpu.algorithm(k.shape) == "direct" for k in jax.tree.leaves(v["params"]["Featex"]) if k.ndim == 4)
    g_xla, g_mm = (_featex_grads(m, v, x, train=True, mutable=["batch_stats"]) for m in (m_xla, m_mm))
    g_xla, g_mm = g_xla["Featex"], g_mm["Featex"]
    assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(g_xla))  # every trunk layer is reached
    scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(g_xla))
    chex.assert_trees_all_close(g_mm, g_xla, atol=1e-4 * scale, rtol=1e-3)


@pytest.mark.slow
def test_fast_imc_step_gradients_equal_plain_autodiff_in_float64():
    """The fast IMC training path (per-tap matmul kernel gradients everywhere, logits from
    conv2d_symmetric_mean) against plain autodiff (XLA kernel gradients, mean of the full logit map)."""
    with enable_x64():
        rng = np.random.default_rng(4)
        x = jnp.asarray(rng.uniform(-1, 1, (2, 12, 14, 3)))
        labels = jnp.asarray([1, 5])
        plain = make_imc_classifier(THIN, num_classes=7, compute=Compute(jnp.float64, kernel_grad="xla"),
                                    fused_head_mean=False)
        fast = make_imc_classifier(THIN, num_classes=7, compute=Compute(jnp.float64, kernel_grad="matmul"))
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), init(plain, 4)["params"])

        def grads(model):
            def loss(p):
                logits = model.apply({"params": p}, x)["logits"]
                return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))
            return jax.jit(jax.value_and_grad(loss))(params)

        (l_plain, g_plain), (l_fast, g_fast) = grads(plain), grads(fast)
        assert l_fast.dtype == jnp.float64
        np.testing.assert_allclose(float(l_fast), float(l_plain), rtol=1e-12)
        assert all(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(g_plain))
        scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(g_plain))
        chex.assert_trees_all_close(g_fast, g_plain, atol=1e-10 * scale, rtol=1e-9)
