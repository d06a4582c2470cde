"""The Keras-2 ConvLSTM of the release: hard-sigmoid gates, zero 'same' convolutions, one direction.

Gate order along the 4F kernel outputs: i, f, c, o. With ``hs(v) = clip(0.2 v + 0.5, 0, 1)``:

    i = hs(Wx_i + Uh_i + b_i)    f = hs(Wx_f + Uh_f + b_f)    o = hs(Wx_o + Uh_o + b_o)
    c = f * c_prev + i * tanh(Wx_c + Uh_c + b_c)               h = o * tanh(c)

with h0 = c0 = 0 and no bias on the recurrent convolution. Note that Keras 2's hard sigmoid is not
``jax.nn.hard_sigmoid`` (which is relu6(v + 3) / 6).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mantra_jax.ops.conv import conv2d_same


def keras_hard_sigmoid(v: jnp.ndarray) -> jnp.ndarray:
    """``clip(0.2 v + 0.5, 0, 1)``."""
    return jnp.clip(0.2 * v + 0.5, 0.0, 1.0)


def convlstm_step(carry: tuple[jnp.ndarray, jnp.ndarray], x_proj: jnp.ndarray,
                  recurrent_kernel: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """One ConvLSTM step.

    Args:
      carry: (h, c), each (B, H, W, F).
      x_proj: (B, H, W, 4F) the input convolution ``W * x_t + b`` for this step.
      recurrent_kernel: (k, k, F, 4F).
    Returns:
      The new (h, c).
    """
    h, c = carry
    f_dim = h.shape[-1]
    if x_proj.shape[-1] != 4 * f_dim or recurrent_kernel.shape[-2:] != (f_dim, 4 * f_dim):
        raise ValueError(
            f"ConvLSTM shapes disagree: h {h.shape}, x_proj {x_proj.shape}, U {recurrent_kernel.shape}")
    return _gates(x_proj + conv2d_same(h, recurrent_kernel), c)


def _gates(z: jnp.ndarray, c: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(h, c) from the pre-activations z (B, H, W, 4F) and the previous cell state c (B, H, W, F)."""
    zi, zf, zc, zo = jnp.split(z, 4, axis=-1)
    i = keras_hard_sigmoid(zi)
    f = keras_hard_sigmoid(zf)
    c = f * c + i * jnp.tanh(zc)
    o = keras_hard_sigmoid(zo)
    return o * jnp.tanh(c), c


def convlstm(x: jnp.ndarray, kernel: jnp.ndarray, recurrent_kernel: jnp.ndarray,
             bias: jnp.ndarray) -> jnp.ndarray:
    """Runs the ConvLSTM over the time axis and returns the last hidden state.

    The input convolution is computed for all steps at once; ``lax.scan`` runs the recurrence.

    Args:
      x: (B, T, H, W, C).
      kernel: (k, k, C, 4F); recurrent_kernel: (k, k, F, 4F); bias: (4F,).
    Returns:
      (B, H, W, F), the hidden state after the last step.
    """
    if x.ndim != 5:
        raise ValueError(f"convlstm expects x of shape (B, T, H, W, C), got {x.shape}")
    b, t, h, w, c = x.shape
    if kernel.shape[2] != c or kernel.shape[3] % 4 or bias.shape != (kernel.shape[3],):
        raise ValueError(f"ConvLSTM kernel {kernel.shape} / bias {bias.shape} do not fit input {x.shape}")
    f_dim = kernel.shape[3] // 4
    x_proj = conv2d_same(x.reshape(b * t, h, w, c), kernel, bias).reshape(b, t, h, w, 4 * f_dim)
    x_proj = jnp.moveaxis(x_proj, 1, 0)
    # First step: h0 = c0 = 0, so the recurrent convolution (of zeros) is skipped; exactly the same values.
    first = _gates(x_proj[0], jnp.zeros((b, h, w, f_dim), x_proj.dtype))

    def step(carry, xp):
        new = convlstm_step(carry, xp, recurrent_kernel.astype(xp.dtype))
        return new, None

    # Fully unrolled (T is the number of window scales, at most a handful): inside a rolled loop XLA on CPU
    # computes the recurrent kernel gradient several times slower (measured: README, Benchmarks).
    (h_last, _), _ = jax.lax.scan(step, first, x_proj[1:], unroll=True)
    return h_last
