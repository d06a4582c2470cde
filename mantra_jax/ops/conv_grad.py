"""A VALID convolution whose kernel gradient is computed as per-tap matrix products.

XLA on CPU computes convolution kernel gradients far slower than the forward pass (measured: README,
Benchmarks). The
kernel gradient of a stride-1 VALID convolution is, for every tap (i, j),

    dK[i, j] = X[:, i:i+H', j:j+W', :]^T  @  dY        ((B*H'*W', I)^T x (B*H'*W', O) -> (I, O))

so it can be computed as k*k dense matrix products, which XLA's CPU backend runs near its matmul peak.
The input gradient stays XLA's own (a transposed convolution runs at forward speed). Use it on CPU only:
on GPU/TPU the native kernel gradient is fast.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

_DIMS = ("NHWC", "HWIO", "NHWC")


def _conv_valid(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    return lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=_DIMS)


@jax.custom_vjp
def conv_valid_matmul_grad(x: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """Stride-1 VALID convolution (B,H,W,I) x (k,k,I,O) -> (B,H-k+1,W-k+1,O), matmul kernel gradient."""
    return _conv_valid(x, kernel)


def _fwd(x, kernel):
    return _conv_valid(x, kernel), (x, kernel)


def kernel_grad_by_taps(x: jnp.ndarray, dy: jnp.ndarray, kh: int, kw: int) -> jnp.ndarray:
    """dK for a VALID stride-1 convolution: (B,H,W,I), (B,H',W',O) -> (kh,kw,I,O), one matmul per tap."""
    b, ho, wo, o = dy.shape
    cin = x.shape[3]
    d = dy.reshape(b * ho * wo, o)
    acc = jnp.promote_types(x.dtype, jnp.float32)
    taps = []
    for i in range(kh):
        for j in range(kw):
            xs = lax.slice(x, (0, i, j, 0), (b, i + ho, j + wo, cin)).reshape(b * ho * wo, cin)
            taps.append(jnp.matmul(xs.T, d, preferred_element_type=acc))
    return jnp.stack(taps).reshape(kh, kw, cin, o)


def _bwd(res, dy):
    x, kernel = res
    _, vjp_x = jax.vjp(lambda a: _conv_valid(a, kernel), x)
    (dx,) = vjp_x(dy)
    dk = kernel_grad_by_taps(x, dy, kernel.shape[0], kernel.shape[1]).astype(kernel.dtype)
    return dx, dk


conv_valid_matmul_grad.defvjp(_fwd, _bwd)


KERNEL_GRADS = ("xla", "matmul")  # the kernel gradients of ``mantra_jax.ops.conv.conv2d_symmetric``
