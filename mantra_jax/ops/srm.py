"""The nine fixed SRM high-pass kernels of ManTra-Net's first layer.

Three 5x5 residual filters (Fridrich & Kodovsky's spatial rich model), each applied to every colour channel
separately: output channel ``3 * i + c`` filters input colour ``c`` with filter ``S(i+1)`` and ignores the
other two colours (no mixing across colours). The values are listed in ../shared/spec/ARCHITECTURE.md.
"""

from __future__ import annotations

import numpy as np

SRM_CHANNELS = 9


def srm_base_filters() -> np.ndarray:
    """The three base filters S1, S2, S3 as float64, shape (3, 5, 5)."""
    s1 = np.zeros((5, 5))
    s1[1:4, 1:4] = [[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]
    s1 /= 4.0
    s2 = np.array(
        [
            [-1, 2, -2, 2, -1],
            [2, -6, 8, -6, 2],
            [-2, 8, -12, 8, -2],
            [2, -6, 8, -6, 2],
            [-1, 2, -2, 2, -1],
        ],
        dtype=np.float64,
    ) / 12.0
    s3 = np.zeros((5, 5))
    s3[2, 1:4] = [1, -2, 1]
    s3 /= 2.0
    return np.stack([s1, s2, s3])


def srm_kernel(dtype: np.dtype = np.float32) -> np.ndarray:
    """The fixed SRM kernel in HWIO layout, shape (5, 5, 3, 9).

    Channel ``3 * i + c`` applies base filter ``i`` to input colour ``c`` only.
    """
    base = srm_base_filters()
    kernel = np.zeros((5, 5, 3, SRM_CHANNELS), dtype=np.float64)
    for i in range(3):
        for c in range(3):
            kernel[:, :, c, 3 * i + c] = base[i]
    return kernel.astype(dtype)
