"""PyTorch-port checkpoints (``.pt`` / ``.pth`` state dicts) -> this project's variables.

The PyTorch port of ManTra-Net (github.com/RonyAbecidan/ManTraNet-pytorch), and IMDL-BenCo's ManTraNet built
on it, keep two modules: ``IMTFE`` (the feature extractor) and ``AnomalyDetector`` (the detection head).
Their files hold both (``MantraNetv4.pt``: names ``IMTFE.<...>`` and ``AnomalyDetector.<...>``) or one
(``IMTFEv4.pt``, ``AnomalyDetectorv4.pt``: bare names), possibly under a prefix (``module.``, ``model.``),
possibly inside a training checkpoint's ``{"model": ...}`` / ``{"state_dict": ...}``.

The name map is data (``FEATEX_MAP``, ``HEAD_MAP``): port name -> this project's ``group/layer/var`` key (the
one ``io.keras_h5`` uses) and the layout change. PyTorch convolutions are (O, I, kh, kw); ours (kh, kw, I, O).
The port's ConvLSTM keeps one convolution over ``cat([input, hidden])``: its first 64 input channels are the
release's ``kernel``, the last 8 its ``recurrent_kernel``; the gate order (i, f, c, o) is the release's.

The port's checkpoints carry no batch-norm moving statistics: the port normalises each image by its own
statistics. A model whose head comes from such a file is built with ``bnorm_statistics="image"`` (the port's
convention); a head taken from ``rest`` keeps that source's statistics. Files are read only through torch's
safe loader (``torch.load(..., weights_only=True)``), never a full unpickle; torch is the optional extra
``mantra_jax[torch]``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import numpy as np

from mantra_jax.errors import WeightFileError

TORCH_EXTRA = "pip install 'mantra_jax[torch]'"
ZIP_SIGNATURE = b"PK\x03\x04"          # torch.save's default (zip) format
LEGACY_SIGNATURE = b"\x80\x02\x8a\x0a"  # torch.save's legacy format: a pickled magic number first
PARTS = ("IMTFE", "AnomalyDetector")  # the port's two modules, in MantraNet's order
STATE_KEYS = ("state_dict", "model", "model_state_dict", "net")  # where training checkpoints keep the weights

# port name (inside its module) -> (our group/layer/var key(s), layout)
HEAD_MAP: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("adaptation.weight", ("outlierTrans/outlierTrans/kernel",), "conv"),
    ("sigma_F", ("glbStd/glbStd/min_std",), "channels"),
    ("conv_lstm.cell_list.0.conv.weight", ("cLSTM/cLSTM/kernel", "cLSTM/cLSTM/recurrent_kernel"), "lstm"),
    ("conv_lstm.cell_list.0.conv.bias", ("cLSTM/cLSTM/bias",), "vector"),
    ("end.0.weight", ("pred/pred/kernel",), "conv"),
    ("end.0.bias", ("pred/pred/bias",), "vector"),
)


def trunk_layers(trunk) -> list[str]:
    """The release's trunk layer names after the first layer, in order, then ``transform`` (the layers of
    ``mantra_jax.models.structure``)."""
    from mantra_jax.models.featex import FeatexConfig

    return [layer.name for layer in FeatexConfig(trunk=tuple(trunk)).layers()[1:]]


def featex_map(trunk) -> tuple[tuple[str, tuple[str, ...], str], ...]:
    """The ``IMTFE`` name map for a trunk (the port's ``middle_and_last_block`` alternates conv and ReLU)."""
    rows = [("init_conv.weight", ("Featex/b1c1/regular_kernel",), "conv"),
            ("BayarConv2D.weight", ("Featex/b1c1/bayar_kernel",), "conv"),
            ("SRMConv2D.weight", ("Featex/b1c1/srm",), "conv")]
    for i, layer in enumerate(trunk_layers(trunk)):
        rows.append((f"middle_and_last_block.{2 * i}.weight", (f"Featex/{layer}/kernel",), "conv"))
        rows.append((f"middle_and_last_block.{2 * i}.bias", (f"Featex/{layer}/bias",), "vector"))
    return tuple(rows)


def _maps(trunk) -> dict[str, tuple[tuple[str, tuple[str, ...], str], ...]]:
    return {"IMTFE": featex_map(trunk), "AnomalyDetector": HEAD_MAP}


def to_ours(layout: str, value: np.ndarray) -> tuple[np.ndarray, ...]:
    """A port tensor in our layout(s): conv (O, I, kh, kw) -> (kh, kw, I, O); channels (1, C, 1, 1) ->
    (1, 1, 1, C); lstm (4F, C + F, k, k) -> kernel (k, k, C, 4F) and recurrent kernel (k, k, F, 4F)."""
    if layout == "vector":
        return (value,)
    if layout == "channels":
        return (value.transpose(0, 2, 3, 1),)
    hwio = value.transpose(2, 3, 1, 0)
    if layout == "conv":
        return (hwio,)
    f = value.shape[0] // 4
    return hwio[:, :, :-f], hwio[:, :, -f:]


def to_port(layout: str, values: tuple[np.ndarray, ...]) -> np.ndarray:
    """Inverse of :func:`to_ours` (shapes only, for checks, and for writing port files in tests)."""
    if layout == "vector":
        return values[0]
    if layout == "channels":
        return values[0].transpose(0, 3, 1, 2)
    hwio = values[0] if layout == "conv" else np.concatenate(values, axis=2)
    return hwio.transpose(3, 2, 0, 1)


def _torch():
    try:
        import torch
    except ImportError:
        raise WeightFileError(f"reading PyTorch checkpoints needs torch: {TORCH_EXTRA}") from None
    return torch


def is_torch_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts like a ``torch.save`` file (zip or legacy format)."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head in (ZIP_SIGNATURE, LEGACY_SIGNATURE)


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A ``.pt`` / ``.pth`` file's tensors as ``name -> float32 array``, through torch's safe loader.

    A training checkpoint's weights under one of ``STATE_KEYS`` are taken; anything but a flat table of
    floating-point tensors is refused in one line."""
    torch = _torch()
    try:
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types (UnpicklingError, RuntimeError, EOFError)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise WeightFileError(f"{path}: not a PyTorch state dict that torch's safe loader accepts ({first})") from None
    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = [k for k in STATE_KEYS if isinstance(obj.get(k), Mapping)]
        obj = obj[inner[0]] if inner else obj
    if not isinstance(obj, Mapping) or not obj:
        raise WeightFileError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")
    out: dict[str, np.ndarray] = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise WeightFileError(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor")
        if not value.is_floating_point():
            raise WeightFileError(f"{path}: tensor {name} holds {value.dtype}, not floating-point values")
        out[name] = value.detach().to(torch.float32).cpu().numpy()
    return out


def split_parts(tensors: Mapping[str, np.ndarray], trunk, path: Any = "") -> dict[str, dict[str, np.ndarray]]:
    """``{part: {port name inside the part: array}}`` for the parts the file holds (``IMTFE``,
    ``AnomalyDetector``). Each part's names share one prefix (``""``, ``"IMTFE."``, ``"module.IMTFE."``...);
    a name of neither part, or a part under two prefixes, is refused. A part present is complete."""
    maps = _maps(trunk)
    known = {name: part for part, rows in maps.items() for name, _, _ in rows}
    prefixes: dict[str, set[str]] = {}
    parts: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        hits = [(name, part) for name, part in known.items() if key == name or key.endswith("." + name)]
        if not hits:
            raise WeightFileError(f"{path}: unexpected tensor {key} (not a ManTra-Net port name)")
        name, part = max(hits, key=lambda h: len(h[0]))
        prefixes.setdefault(part, set()).add(key[:-len(name)])
        parts.setdefault(part, {})[name] = value
    for part, found in prefixes.items():
        if len(found) > 1:
            raise WeightFileError(f"{path}: {part} tensors under several prefixes ({', '.join(sorted(found))})")
        missing = [name for name, _, _ in maps[part] if name not in parts[part]]
        if missing:
            raise WeightFileError(f"{path}: {part} is missing tensor(s) {', '.join(missing)}")
    return parts


def part_weights(part: str, tensors: Mapping[str, np.ndarray], trunk, expected: Mapping[str, tuple],
                 path: Any = "") -> dict[str, np.ndarray]:
    """One part's tensors as our ``group/layer/var`` arrays, each checked for shape against ``expected``."""
    out: dict[str, np.ndarray] = {}
    for name, keys, layout in _maps(trunk)[part]:
        want = tuple(to_port(layout, tuple(np.zeros(expected[k], np.float32) for k in keys)).shape)
        got = tuple(tensors[name].shape)
        if got != want:
            raise WeightFileError(f"{path}: tensor {name} has shape {got}, expected {want}")
        out.update(zip(keys, to_ours(layout, tensors[name])))
    return out


def load_torch_weights(path: str | os.PathLike, *, rest: tuple | Callable[[], tuple] | None = None,
                       windows: tuple[int, ...] | None = None, variant: str | None = None, compute=None):
    """Loads a PyTorch-port checkpoint into a ManTra-Net.

    Args:
      path: the ``.pt`` / ``.pth`` file (both parts, or the feature extractor or the detection head alone).
      rest: where the part the file lacks comes from: a ManTra-Net ``(model, variables)`` pair, or a function
        of no arguments returning one (called only when a part is lacking; ``io.checkpoints.load_model``
        passes one for ``rest=PATH``). Parts the file holds always come from the file.
      windows: the anomaly feature's windows (default: the variant's). variant: the release preset
        (default: from the first-layer width, or ``rest``'s). compute: the model's ``Compute``.
    Returns:
      ``(model, variables)``; the model's ``bnorm_statistics`` is ``"image"`` when the head comes from the
      file (the port's convention: its files carry no moving statistics), else ``rest``'s.
    """
    from mantra_jax.io.keras_h5 import default_variant_for, release_shapes, variables_to_weights, weights_to_variables
    from mantra_jax.io.variables import check_variables
    from mantra_jax.models.compute import Compute
    from mantra_jax.models.featex import RELEASE_TRUNK
    from mantra_jax.models.variants import get_variant, make_mantranet

    parts = split_parts(read_state_dict(path), RELEASE_TRUNK, path)
    lacking = [p for p in PARTS if p not in parts]
    base_model, weights = None, {}
    if lacking:
        if rest is None:
            raise WeightFileError(f"{path} holds only the {' and '.join(parts)} part; give the "
                                  f"{' and '.join(lacking)} from another checkpoint (rest=..., --complete-from CKPT)")
        base_model, base_vars = rest if isinstance(rest, tuple) else rest()
        weights = variables_to_weights(base_vars)
    if "IMTFE" in parts:
        plain = int(parts["IMTFE"]["init_conv.weight"].shape[0])
        v = get_variant(variant or default_variant_for(plain))
    else:
        v = get_variant(variant or default_variant_for(int(base_model.plain_filters)))
    if v.trunk != RELEASE_TRUNK:
        raise WeightFileError(f"{path}: variant {v.name} does not have the release trunk the port's files have")
    expected = {**release_shapes(v.plain_filters, v.trunk, v.transform_features), "Featex/b1c1/srm": (5, 5, 3, 9)}
    for part, tensors in parts.items():
        weights.update(part_weights(part, tensors, v.trunk, expected, path))
    if "AnomalyDetector" in parts:  # unused by per-image normalisation; the model still declares them
        bnorm_statistics = "image"
        c = expected["bnorm/bnorm/moving_mean"]
        weights["bnorm/bnorm/moving_mean"] = np.zeros(c, np.float32)
        weights["bnorm/bnorm/moving_variance"] = np.ones(c, np.float32)
    else:
        bnorm_statistics = base_model.bnorm_statistics
    variables = weights_to_variables(weights, trunk=v.trunk, transform_features=v.transform_features, path=path)
    model = make_mantranet(v, windows=windows, compute=Compute() if compute is None else compute,
                           bnorm_statistics=bnorm_statistics)
    return model, check_variables(model, variables, str(path))
