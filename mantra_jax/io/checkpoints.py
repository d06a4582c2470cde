"""One loader for every checkpoint kind: ``load_model(path) -> (model, variables, config)``.

``path`` may be an official-layout Keras ``.h5`` (recognised by the HDF5 signature; ``io.keras_h5``), a
PyTorch-port ``.pt`` / ``.pth`` state dict (recognised by torch.save's signatures; ``io.torch_pt``, needs the
``torch`` extra), a single-file ``.msgpack`` (``io.msgpack_weights``), or an Orbax training checkpoint
directory of this project (``io.orbax_layout``). Every failure is a ``CheckpointError`` (``mantra_jax.errors``) with a one-line message.

The model config lives in ``mantra_jax.models.config``, the variable checks in ``io.variables``, the
single-file format in ``io.msgpack_weights``: import their names from there.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

from mantra_jax.errors import CheckpointError
from mantra_jax.io.msgpack_weights import load_weights_file
from mantra_jax.io.orbax_layout import first_line, restore_inference_variables
from mantra_jax.io.variables import check_variables
from mantra_jax.models.config import ModelConfig, check_config, model_from_config

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

__all__ = ["HDF5_SIGNATURE", "load_model", "restore_orbax"]


def _keras_config(model: Any, variant: str | None) -> dict[str, Any]:
    from mantra_jax.models.variants import VARIANTS

    if variant is None:
        names = [v.name for v in VARIANTS.values()
                 if v.plain_filters == model.plain_filters and v.transform_activation == model.transform_activation
                 and v.trunk == model.trunk and v.transform_features == model.transform_features]
        variant = "ptrain4" if "ptrain4" in names else names[0]
    return {"kind": "mantranet", "variant": variant, "windows": [int(n) for n in model.windows],
            "anomaly_feature": "time_z"}


def _is_hdf5(path: pathlib.Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read checkpoint ({e.strerror or e})") from None


def _is_torch(path: pathlib.Path) -> bool:
    from mantra_jax.io.torch_pt import is_torch_file

    try:
        return is_torch_file(path)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read checkpoint ({e.strerror or e})") from None


def restore_orbax(directory: str | os.PathLike) -> tuple[dict[str, Any], Any]:
    """``(config, variables)`` of an Orbax training checkpoint directory (see ``io.orbax_layout``)."""
    try:
        return restore_inference_variables(directory)
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - Orbax raises many types for a wrong directory
        raise CheckpointError(f"{directory}: not a readable training checkpoint ({first_line(e)})") from None


def _detector(path: str | os.PathLike) -> tuple[Any, Any]:
    """``(model, variables)`` of a ManTra-Net checkpoint (the ``rest`` of a one-part ``.pt`` file)."""
    model, variables, cfg = load_model(path)
    if cfg["kind"] != "mantranet":
        raise CheckpointError(f"{path}: holds an IMC classifier; the rest of a detector needs a ManTra-Net")
    return model, variables


def load_model(path: str | os.PathLike, *, variant: str | None = None,
               windows: tuple[int, ...] | None = None,
               rest: str | os.PathLike | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """Loads any supported checkpoint. Returns ``(model, variables, config)``.

    Args:
      path: an official-layout Keras ``.h5``, a PyTorch-port ``.pt``, a ``.msgpack`` weights file, or an Orbax
        checkpoint directory.
      variant, windows: only for ``.h5`` and ``.pt`` files, which carry no config (see ``load_keras_weights``):
        the release variant (default inferred from the first layer) and the window sizes.
      rest: only for a ``.pt`` file holding one part (feature extractor or detection head): the checkpoint
        the other part comes from (``io.torch_pt.load_torch_weights``).
    Raises:
      CheckpointError: missing, unreadable or inconsistent checkpoint (one-line message).
    """
    from mantra_jax.io.keras_h5 import load_keras_weights

    p = pathlib.Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist")
    torch_file = p.is_file() and _is_torch(p)
    if (variant is not None or windows is not None) and (p.is_dir() or not (_is_hdf5(p) or torch_file)):
        raise CheckpointError(f"{p}: --variant/--windows apply only to Keras .h5 and PyTorch .pt files (others "
                              "carry a config)")
    if rest is not None and not torch_file:
        raise CheckpointError(f"{p}: --complete-from applies only to a PyTorch checkpoint holding one part")
    if torch_file:
        from mantra_jax.io.torch_pt import load_torch_weights

        try:
            model, variables = load_torch_weights(p, rest=None if rest is None else lambda: _detector(rest),
                                                  windows=windows, variant=variant)
        except ValueError as e:
            raise CheckpointError(str(e).splitlines()[0]) from None
        cfg = {**_keras_config(model, variant), "bnorm": model.bnorm_statistics}
        return model, variables, check_config(cfg)
    if p.is_dir():
        cfg, raw = restore_orbax(p)
        try:
            config = ModelConfig.from_dict(cfg)
        except CheckpointError as e:
            raise CheckpointError(f"{p}: {e}") from None
        model = config.build()
        return model, check_variables(model, raw, str(p)), config.to_dict()
    if _is_hdf5(p):
        try:
            model, variables = load_keras_weights(p, windows=windows, variant=variant)
        except ValueError as e:
            raise CheckpointError(str(e).splitlines()[0]) from None
        return model, variables, check_config(_keras_config(model, variant))
    cfg, variables = load_weights_file(p)
    return model_from_config(cfg), variables, cfg
