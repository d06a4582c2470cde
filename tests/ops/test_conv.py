import chex
import jax.numpy as jnp
import numpy as np
import pytest

from mantra_jax.ops.conv import conv2d_same, conv2d_symmetric, conv2d_symmetric_mean, l2_normalize, symmetric_pad


def _conv_valid_ref(x, k):
    b, h, w, _ = x.shape
    kh, kw, _, o = k.shape
    out = np.zeros((b, h - kh + 1, w - kw + 1, o))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("bhwc,co->bhwo", x[:, i:i + out.shape[1], j:j + out.shape[2]], k[i, j])
    return out


@pytest.mark.parametrize("pad", [1, 2, 3])
def test_symmetric_pad_equals_numpy_symmetric(pad):
    x = np.random.default_rng(0).normal(size=(1, 4, 5, 2))
    ref = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    chex.assert_trees_all_close(symmetric_pad(jnp.asarray(x), pad, pad), ref.astype(np.float32), atol=0)


def test_symmetric_pad_larger_than_image_repeats_mirror():
    x = np.arange(2.0).reshape(1, 2, 1, 1)
    got = np.asarray(symmetric_pad(jnp.asarray(x), 3, 0))[0, :, 0, 0]
    # period-4 mirror of [0, 1]: ... 1 0 | 0 1 | 1 0 0 ...
    np.testing.assert_array_equal(got, [1, 1, 0, 0, 1, 1, 0, 0])


def test_conv2d_symmetric_matches_float64_reference():
    rng = np.random.default_rng(1)
    x, k, b = rng.normal(size=(2, 9, 11, 3)), rng.normal(size=(5, 5, 3, 4)), rng.normal(size=(4,))
    ref = _conv_valid_ref(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="symmetric"), k) + b
    got = conv2d_symmetric(jnp.asarray(x, jnp.float32), jnp.asarray(k, jnp.float32), jnp.asarray(b, jnp.float32))
    chex.assert_shape(got, (2, 9, 11, 4))
    chex.assert_trees_all_close(got, ref, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv2d_symmetric_mean_is_the_mean_of_the_convolution(k):
    rng = np.random.default_rng(k)
    x, kern, b = rng.normal(size=(2, 9, 11, 3)), rng.normal(size=(k, k, 3, 4)), rng.normal(size=(4,))
    p = k // 2
    ref = (_conv_valid_ref(np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="symmetric"), kern) + b).mean(axis=(1, 2))
    got = conv2d_symmetric_mean(jnp.asarray(x, jnp.float32), jnp.asarray(kern, jnp.float32),
                                jnp.asarray(b, jnp.float32))
    chex.assert_shape(got, (2, 4))
    chex.assert_trees_all_close(got, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("choice,match", [({"algorithm": "auto"}, "conv algorithm .*concrete.*'auto'"),
                                          ({"kernel_grad": "auto"}, "kernel_grad .*concrete.*'auto'"),
                                          ({"algorithm": "fft"}, "conv algorithm"),
                                          ({"kernel_grad": "fast"}, "kernel_grad")])
def test_conv2d_symmetric_takes_only_concrete_choices(choice, match):
    with pytest.raises(ValueError, match=match):
        conv2d_symmetric(jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 2, 1)), **choice)


def test_conv2d_symmetric_refuses_winograd_off_3x3_kernels():
    with pytest.raises(ValueError, match="3 x 3 kernels only"):
        conv2d_symmetric(jnp.zeros((1, 4, 4, 2)), jnp.zeros((5, 5, 2, 1)), algorithm="winograd2")


def test_conv2d_same_matches_zero_padded_reference():
    rng = np.random.default_rng(2)
    x, k = rng.normal(size=(1, 6, 7, 2)), rng.normal(size=(7, 7, 2, 3))
    ref = _conv_valid_ref(np.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0))), k)
    chex.assert_trees_all_close(conv2d_same(jnp.asarray(x, jnp.float32), jnp.asarray(k, jnp.float32)), ref,
                                atol=1e-4, rtol=1e-5)


def test_conv_rejects_mismatched_kernel():
    with pytest.raises(ValueError, match="does not fit"):
        conv2d_symmetric(jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 2, 1)))


def test_l2_normalize_matches_reference_and_guards_zero():
    x = np.random.default_rng(3).normal(size=(2, 3, 4, 8))
    ref = x / np.sqrt(np.maximum((x ** 2).sum(-1, keepdims=True), 1e-12))
    chex.assert_trees_all_close(l2_normalize(jnp.asarray(x, jnp.float32)), ref, atol=1e-6)
    assert np.all(np.asarray(l2_normalize(jnp.zeros((1, 1, 1, 4)))) == 0)
