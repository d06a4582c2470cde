"""Analytic FLOP counts of the train steps (for achieved TFLOP/s and MFU) and accelerator peaks.

A k x k convolution from I to O channels costs ``2 k^2 I O`` FLOPs per output pixel forward; training
adds the kernel gradient (same cost) and the input gradient (same cost, skipped for the first layer,
whose input is the image). Counted, from the model's layers (``mantra_jax.models.structure``): the first
layer, the trunk (residual units' projection shortcuts included) and transform (feature extractor), the IMC
head's fused mean (negligible), and the LADN's outlierTrans, ConvLSTM (input and recurrent convolutions at
each of ``len(windows) + 1`` time steps) and prediction layer. Element-wise
work (ReLU, batch norm, window means, Z-scores, gates) is left out: under 1 % of the total.
``mantra_jax.train`` tests compare these counts with XLA's own (``cost_analysis`` of the lowered step).
"""

from __future__ import annotations

from typing import Sequence

from mantra_jax.models.structure import forward_flops_per_pixel, in_parts
from mantra_jax.models.variants import get_variant, make_mantranet

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

def featex_forward_per_pixel(variant: str) -> tuple[int, int]:
    """(first layer, trunk + shortcuts + transform) forward FLOPs per pixel, from the variant's layers
    (``mantra_jax.models.structure``)."""
    layers = get_variant(variant).featex.layers()
    return (forward_flops_per_pixel(in_parts(layers, ("first",))),
            forward_flops_per_pixel(in_parts(layers, ("trunk", "shortcut", "transform"))))


def train_flops_per_pixel(variant: str, kind: str, windows: Sequence[int] | None = None,
                          frozen_featex: bool = False) -> int:
    """Training FLOPs per input pixel of the ``kind`` ("imc" or "mantranet") step (the IMC head's cost does
    not grow with the image, so the number of classes does not enter)."""
    first, trunk = featex_forward_per_pixel(variant)
    featex = first + trunk if frozen_featex else 2 * first + 3 * trunk
    if kind == "imc":
        return featex  # the head's fused mean costs O(1) per pixel
    if kind != "mantranet":
        raise ValueError(f"kind must be 'imc' or 'mantranet', got {kind!r}")
    model = make_mantranet(variant, windows=None if windows is None else tuple(windows))
    ladn = forward_flops_per_pixel(in_parts(model.layers(), ("ladn",)))
    return featex + 3 * ladn


def peak_flops(device_kind: str) -> float | None:
    """The bf16 peak of a device kind (None when not in ``BF16_PEAK_FLOPS``, e.g. a CPU)."""
    return BF16_PEAK_FLOPS.get(device_kind)
