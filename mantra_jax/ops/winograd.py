"""Winograd minimal-filtering 3 x 3 convolutions, F(2x2, 3x3) and F(4x4, 3x3), as batched matmuls.

A stride-1 3 x 3 correlation computes every m x m block of outputs from an (m+2) x (m+2) input tile
``d``. Winograd's algorithm (Lavin & Gray 2016, "Fast algorithms for convolutional neural networks")
writes it as

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A            ((.): elementwise over the (m+2)^2 tile points)

With many channels the elementwise product becomes, for each of the (m+2)^2 tile points t, a matrix
product over channels: ``M[t] = V[t] @ U[t]`` with V[t] (tiles, I) the transformed input and U[t] (I, O)
the transformed kernel. Per output pixel that is (m+2)^2 / m^2 multiply-adds per channel pair instead of
9: 4 for F(2x2, 3x3) (2.25x fewer), 2.25 for F(4x4, 3x3) (4x fewer). The transforms are sums with small
constant coefficients, elementwise for XLA.

Rounding. The transforms add a few float32 roundings and F(4x4) multiplies by up to 8 (and divides by
24), so its error is larger than a direct convolution's, F(2x2)'s about the same; ``error_bound`` gives
the componentwise float32 bound used by the tests.

Layout NHWC / HWIO as in ``mantra_jax.ops.conv``; the functions here take the already padded input (a
VALID convolution), ``mantra_jax.ops.conv.conv2d_symmetric`` pads.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import jax.numpy as jnp
from jax import lax

# Interpolation points of the Cook-Toom construction (plus the point at infinity). F(2, 3): 0, 1, -1 as
# Lavin & Gray. F(4, 3): 0, 1, -1, 1/2, -2 rather than their 0, 1, -1, 2, -2, which has about 1.6x
# the rms and 3x the max float32 error (Barabasz et al. 2020, "Error analysis and improving the accuracy
# of Winograd convolution for deep neural networks", chose points the same way; measured in the tests).
POINTS: dict[int, tuple[Fraction, ...]] = {
    2: (Fraction(0), Fraction(1), Fraction(-1)),
    3: (Fraction(0), Fraction(1), Fraction(-1), Fraction(1, 2)),
    4: (Fraction(0), Fraction(1), Fraction(-1), Fraction(1, 2), Fraction(-2)),
}


def _cook_toom(points: tuple[Fraction, ...], m: int, r: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B^T, G, A^T) of F(m, r) for 1-D correlation ``y_i = sum_j d_(i+j) g_j`` from n - 1 = m + r - 2
    finite points: A^T evaluates the degree-(m-1) output polynomial at the points (and takes its leading
    coefficient for infinity), G evaluates the filter polynomial divided by the Lagrange denominators, and
    B^T solves ``sum_k A^T[i,k] G[k,j] B^T[k,l] = [l == i + j]`` exactly (in fractions)."""
    n = m + r - 1
    if len(points) != n - 1 or len(set(points)) != n - 1:
        raise ValueError(f"F({m}, {r}) needs {n - 1} distinct finite points, got {points}")
    at = [[p ** i for p in points] + [Fraction(int(i == m - 1))] for i in range(m)]
    g = []
    for k, p in enumerate(points):
        denom = Fraction(1)
        for l, q in enumerate(points):
            if l != k:
                denom *= p - q
        g.append([p ** j / denom for j in range(r)])
    g.append([Fraction(int(j == r - 1)) for j in range(r)])
    # Row k of B^T only meets column k of A^T G: for each k the equations in B^T[k, :] are triangular in
    # the monomials; solve the square system over (i, j) pairs by exact Gaussian elimination per column l.
    rows = [[at[i][k] * g[k][j] for k in range(n)] for i in range(m) for j in range(r)]
    bt = [[Fraction(0)] * n for _ in range(n)]
    for l in range(n):
        rhs = [Fraction(int(l == i + j)) for i in range(m) for j in range(r)]
        sol = _solve_exact(rows, rhs, n)
        for k in range(n):
            bt[k][l] = sol[k]
    return tuple(np.array([[float(v) for v in row] for row in mat]) for mat in (bt, g, at))


def _solve_exact(a: list[list[Fraction]], b: list[Fraction], n: int) -> list[Fraction]:
    """The solution of the consistent (possibly overdetermined) system a x = b, exactly."""
    aug = [row[:] + [v] for row, v in zip(a, b)]
    piv_cols, r = [], 0
    for c in range(n):
        p = next((i for i in range(r, len(aug)) if aug[i][c] != 0), None)
        if p is None:
            continue
        aug[r], aug[p] = aug[p], aug[r]
        aug[r] = [v / aug[r][c] for v in aug[r]]
        for i in range(len(aug)):
            if i != r and aug[i][c] != 0:
                f = aug[i][c]
                aug[i] = [vi - f * vr for vi, vr in zip(aug[i], aug[r])]
        piv_cols.append(c)
        r += 1
    if len(piv_cols) != n or any(row[-1] != 0 for row in aug[r:]):
        raise ValueError("the Winograd transform system has no unique solution")
    x = [Fraction(0)] * n
    for i, c in enumerate(piv_cols):
        x[c] = aug[i][-1]
    return x


_MATRICES = {m: _cook_toom(p, m) for m, p in POINTS.items()}
TILE_SIZES = tuple(sorted(_MATRICES))
# Whether the row stage of the input transform is materialised before the column stage. Fused, XLA
# recomputes each row-transformed tap for every column point: cheap for F(2x2) (2 terms), not for F(4x4)
# (up to 4 terms, 6 points); measured with experiments/bench_forward.py.
_MATERIALIZE_ROWS = {2: False, 3: True, 4: True}


def transform_matrices(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B^T (n, n), G (n, 3), A^T (m, n)) for F(m x m, 3 x 3), n = m + 2, float64."""
    if m not in _MATRICES:
        raise ValueError(f"Winograd output tile must be one of {TILE_SIZES}, got {m}")
    return _MATRICES[m]


def _combine(coeffs: np.ndarray, terms: list[jnp.ndarray]) -> jnp.ndarray:
    """sum_k coeffs[k] * terms[k], skipping zero coefficients and multiplications by +-1."""
    out = None
    for c, t in zip(coeffs, terms):
        if c == 0:
            continue
        term = t if c == 1 else (-t if c == -1 else t * jnp.asarray(c, t.dtype))
        out = term if out is None else out + term
    return out


def _check(xp: jnp.ndarray, kernel: jnp.ndarray) -> None:
    if xp.ndim != 4:
        raise ValueError(f"expected x of shape (B, H, W, C), got {xp.shape}")
    if kernel.shape[:2] != (3, 3) or kernel.ndim != 4 or kernel.shape[2] != xp.shape[-1]:
        raise ValueError(f"Winograd needs a (3, 3, I, O) kernel with I = {xp.shape[-1]}, got {kernel.shape}")
    if xp.shape[1] < 3 or xp.shape[2] < 3:
        raise ValueError(f"input {xp.shape} is smaller than the 3 x 3 kernel")


def kernel_transform(kernel: jnp.ndarray, m: int) -> jnp.ndarray:
    """U = G g G^T per (I, O): (3, 3, I, O) -> (n*n, I, O), n = m + 2, tile points row-major."""
    _, g, _ = transform_matrices(m)
    g = jnp.asarray(g, kernel.dtype)
    u = jnp.einsum("ui,ijco,vj->uvco", g, kernel, g, precision=lax.Precision.HIGHEST)
    n = m + 2
    return u.reshape(n * n, *kernel.shape[2:])


def _taps(x: jnp.ndarray, m: int, tiles: int, axis: int) -> list[jnp.ndarray]:
    """The n = m + 2 tile taps along ``axis``: element i is ``x[..., m*t + i, ...]`` for t < ``tiles``.

    Built from two reshapes of contiguous slices (tap i < m from the block of rows t*m .. t*m+m-1, tap
    i >= m from the next block), not from strided slices, which XLA:CPU runs several times slower. ``x``
    must hold ``tiles * m + 2`` samples along ``axis``.
    """
    n = m + 2
    shape = x.shape
    x = jnp.pad(x, [(0, 0)] * axis + [(0, m - 2)] + [(0, 0)] * (x.ndim - axis - 1))
    split = shape[:axis] + (tiles, m) + shape[axis + 1:]
    head = lax.slice_in_dim(x, 0, tiles * m, axis=axis).reshape(split)
    nxt = lax.slice_in_dim(x, m, m + tiles * m, axis=axis).reshape(split)
    return [lax.index_in_dim(head if i < m else nxt, i % m if i < m else i - m, axis=axis + 1, keepdims=False)
            for i in range(n)]


def input_transform(xp: jnp.ndarray, m: int) -> tuple[list[jnp.ndarray], int, int]:
    """V = B^T d B for every tile: (B, H, W, C) padded input -> (n*n arrays (B, th, tw, C), th, tw).

    Tiles start every m pixels; the input is zero-extended at the bottom/right to whole tiles (the extra
    outputs are cropped by ``winograd_conv3x3``). The tile points stay separate arrays (row-major u, v):
    stacking them costs XLA:CPU more than the transform itself.
    """
    bt, _, _ = transform_matrices(m)
    n = m + 2
    _, h, w, _ = xp.shape
    th, tw = -(-(h - 2) // m), -(-(w - 2) // m)
    xp = jnp.pad(xp, ((0, 0), (0, th * m + 2 - h), (0, tw * m + 2 - w), (0, 0)))
    rows = [_combine(bt[u], _taps(xp, m, th, 1)) for u in range(n)]  # each (B, th, Wp, C)
    if _MATERIALIZE_ROWS[m]:
        rows = lax.optimization_barrier(rows)
    return [_combine(bt[v], _taps(r, m, tw, 2)) for r in rows for v in range(n)], th, tw


def output_transform(prod: list[jnp.ndarray], m: int) -> jnp.ndarray:
    """Y = A^T M A: n*n arrays (B, th, tw, O) (row-major tile points) -> (B, th*m, tw*m, O)."""
    _, _, at = transform_matrices(m)
    n = m + 2
    b, th, tw, o = prod[0].shape
    # Along the tile columns (index v) first, then rows (index u).
    cols = [[_combine(at[q], prod[u * n:(u + 1) * n]) for q in range(m)] for u in range(n)]
    blocks = [[_combine(at[p], [cols[u][q] for u in range(n)]) for q in range(m)] for p in range(m)]
    y = jnp.stack([jnp.stack(row, axis=3) for row in blocks], axis=2)  # (B, th, m, tw, m, O)
    return y.reshape(b, th * m, tw * m, o)


def winograd_conv3x3(xp: jnp.ndarray, kernel: jnp.ndarray, m: int = 2) -> jnp.ndarray:
    """VALID stride-1 3 x 3 convolution by Winograd F(m x m, 3 x 3): (B, H, W, I) x (3, 3, I, O) ->
    (B, H-2, W-2, O). Equal to ``lax.conv_general_dilated(..., 'VALID')`` up to float rounding (see
    ``error_bound``). Differentiable (every step is linear jnp)."""
    _check(xp, kernel)
    b, h, w, c = xp.shape
    v, th, tw = input_transform(xp, m)
    u = kernel_transform(kernel.astype(xp.dtype), m)
    acc = jnp.promote_types(xp.dtype, jnp.float32)
    # One matmul per tile point (no batched matmul: it would need the points stacked).
    prod = [jnp.matmul(vt.reshape(b * th * tw, c), u[t], preferred_element_type=acc).astype(xp.dtype)
            .reshape(b, th, tw, -1) for t, vt in enumerate(v)]
    y = output_transform(prod, m)
    return y[:, :h - 2, :w - 2]


def error_bound(xp: np.ndarray, kernel: np.ndarray, m: int | None, unit_roundoff: float) -> np.ndarray:
    """Componentwise bound on the rounding error of a float32 3 x 3 VALID convolution of ``xp``.

    ``m=None``: direct convolution, ``|err| <= gamma * (|x| * |g|)`` (``*``: the convolution) with
    ``gamma = k u / (1 - k u)`` for k = 9 I + 1 sequential operations (Higham, "Accuracy and Stability
    of Numerical Algorithms", 3.1). Winograd F(m x m, 3 x 3): every rounded step is a linear map
    applied to rounded data, so the same holds with the absolute values of the transform matrices,
    ``|A^T| [ (|G| |g| |G^T|) (.) (|B^T| |d| |B|) ] |A|`` summed over channels, and k counting the steps
    of all three transforms and the channel sum: 2n + 2m + 4 + I (n = m + 2). float64 numpy, (B, H-2, W-2, O).
    """
    xa = np.abs(np.asarray(xp, np.float64))
    ga = np.abs(np.asarray(kernel, np.float64))
    b, h, w, c = xa.shape
    if m is None:
        k = 9 * c + 1
        acc = sum(np.einsum("bhwc,co->bhwo", xa[:, i:h - 2 + i, j:w - 2 + j], ga[i, j])
                  for i in range(3) for j in range(3))
    else:
        bt, g, at = (np.abs(t) for t in transform_matrices(m))
        n = m + 2
        k = 2 * n + 2 * m + 4 + c
        th, tw = -(-(h - 2) // m), -(-(w - 2) // m)
        xa = np.pad(xa, ((0, 0), (0, th * m + 2 - h), (0, tw * m + 2 - w), (0, 0)))
        idx_h = (np.arange(th) * m)[:, None] + np.arange(n)  # (th, n)
        idx_w = (np.arange(tw) * m)[:, None] + np.arange(n)
        tiles = xa[:, idx_h][:, :, :, idx_w]  # (B, th, n, tw, n, C)
        vt = np.einsum("ui,bxiyjc,vj->bxyuvc", bt, tiles, bt)
        ut = np.einsum("ui,ijco,vj->uvco", g, ga, g)
        prod = np.einsum("bxyuvc,uvco->bxyuvo", vt, ut)
        yt = np.einsum("pu,bxyuvo,qv->bxpyqo", at, prod, at).reshape(b, th * m, tw * m, -1)
        acc = yt[:, :h - 2, :w - 2]
    ku = k * unit_roundoff
    return ku / (1 - ku) * acc


__all__ = ["TILE_SIZES", "transform_matrices", "kernel_transform", "input_transform", "output_transform",
           "winograd_conv3x3", "error_bound"]
