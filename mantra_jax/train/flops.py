"""Analytic FLOP counts of the train steps (for achieved TFLOP/s and MFU) and accelerator peaks.

A k x k convolution from I to O channels costs ``2 k^2 I O`` FLOPs per output pixel forward; training
adds the kernel gradient (same cost) and the input gradient (same cost, skipped for the first layer,
whose input is the image). Counted: the combined first layer, the trunk and transform (feature
extractor), the IMC head's fused mean (negligible), and the LADN's outlierTrans, ConvLSTM (input and
recurrent convolutions at each of ``len(windows) + 1`` time steps) and prediction layer. Element-wise
work (ReLU, batch norm, window means, Z-scores, gates) is left out: under 1 % of the total.
``mantra_jax.train`` tests compare these counts with XLA's own (``cost_analysis`` of the lowered step).
"""

from __future__ import annotations

from typing import Sequence

from mantra_jax.models.variants import get_variant
from mantra_jax.ops.srm import SRM_CHANNELS

# Dense bf16 peak FLOP/s per device kind (``jax.Device.device_kind``); H200 as the project's issue 10 states.
BF16_PEAK_FLOPS = {
    "NVIDIA H200": 790e12,
    "NVIDIA H100 80GB HBM3": 989e12,
    "NVIDIA H100 PCIe": 756e12,
    "NVIDIA A100-SXM4-80GB": 312e12,
    "NVIDIA A100-SXM4-40GB": 312e12,
    "NVIDIA A100 80GB PCIe": 312e12,
    "NVIDIA L4": 121e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
}

LADN_FEATURES, LSTM_FEATURES, LSTM_KERNEL, PRED_KERNEL = 64, 8, 7, 7


def _conv(k: int, i: int, o: int) -> int:
    return 2 * k * k * i * o


def featex_forward_per_pixel(variant: str) -> tuple[int, int]:
    """(first layer, trunk + transform) forward FLOPs per pixel."""
    v = get_variant(variant)
    first_out = v.plain_filters + SRM_CHANNELS + 3
    first = _conv(5, 3, first_out)
    trunk, c = 0, first_out
    for widths in v.trunk:
        for w in widths:
            trunk += _conv(3, c, w)
            c = w
    trunk += _conv(3, c, v.transform_features)
    return first, trunk


def train_flops_per_pixel(variant: str, kind: str, windows: Sequence[int] | None = None,
                          frozen_featex: bool = False) -> int:
    """Training FLOPs per input pixel of the ``kind`` ("imc" or "mantranet") step (the IMC head's cost does
    not grow with the image, so the number of classes does not enter)."""
    v = get_variant(variant)
    first, trunk = featex_forward_per_pixel(variant)
    featex = first + trunk if frozen_featex else 2 * first + 3 * trunk
    if kind == "imc":
        return featex  # the head's fused mean costs O(1) per pixel
    if kind != "mantranet":
        raise ValueError(f"kind must be 'imc' or 'mantranet', got {kind!r}")
    steps = len(v.windows if windows is None else windows) + 1
    f4 = 4 * LSTM_FEATURES
    ladn = (_conv(1, v.transform_features, LADN_FEATURES)
            + steps * (_conv(LSTM_KERNEL, LADN_FEATURES, f4) + _conv(LSTM_KERNEL, LSTM_FEATURES, f4))
            + _conv(PRED_KERNEL, LSTM_FEATURES, 1))
    return featex + 3 * ladn


def peak_flops(device_kind: str) -> float | None:
    """The bf16 peak of a device kind (None when not in ``BF16_PEAK_FLOPS``, e.g. a CPU)."""
    return BF16_PEAK_FLOPS.get(device_kind)
