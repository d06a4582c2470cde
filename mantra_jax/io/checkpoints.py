"""Model configurations, the single-file weights format, and one loader for every checkpoint kind.

A model config is a JSON-able dict that rebuilds the network exactly:

    {"kind": "mantranet" | "imc",        # detection model or IMC pre-training classifier
     "variant": "ptrain4" | "tiny" | ...,  # a preset of mantra_jax.models.variants
     "windows": [7, 15, 31],             # mantranet only; default: the variant's
     "anomaly_feature": "time_z",        # mantranet only; a registered name (df, zf, fac, time_z)
     "num_classes": 385,                 # imc only
     "dtype": "float32" | "bfloat16"}    # optional computation dtype of the feature extractor

Unknown keys are rejected, so a typo never silently falls back to a default.

Single-file weights (``*.msgpack``): ``flax.serialization.msgpack_serialize`` of
``{"format": "mantra_jax.weights", "version": 1, "config": <config as a JSON string>, "variables":
{"params": ..., "batch_stats": ...}}`` with numpy float32 leaves; written atomically (temporary file +
``os.replace``); no pickle anywhere. Loading checks the variables' tree, shapes and dtypes against the
model the config builds.

``load_model(path)`` accepts an official-layout Keras ``.h5`` (recognised by the HDF5 signature, loaded by
``mantra_jax.io.keras_h5.load_keras_weights``), a single-file ``.msgpack``, or an Orbax training
checkpoint directory of this project (restored by ``mantra_jax.train.checkpoints.restore_inference_variables``,
imported only then). Every failure is a ``CheckpointError`` with a one-line message.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Mapping

import numpy as np

from mantra_jax.io.atomic import write_bytes_atomic

FORMAT = "mantra_jax.weights"
VERSION = 1
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
CONFIG_KEYS = frozenset({"kind", "variant", "windows", "anomaly_feature", "num_classes", "dtype"})
DTYPES = ("float32", "bfloat16")


class CheckpointError(ValueError):
    """A checkpoint or model config that cannot be used: missing, corrupt, or not matching its model."""


# ---- configs -------------------------------------------------------------------------------------------

def check_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Validates a model config and returns it normalised (windows as a list of ints, defaults filled)."""
    from mantra_jax.models.variants import get_variant
    from mantra_jax.ops.anomaly import ANOMALY_FEATURES

    if not isinstance(cfg, Mapping):
        raise CheckpointError(f"model config must be a dict, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - CONFIG_KEYS)
    if unknown:
        raise CheckpointError(f"model config has unknown key(s) {unknown}; known: {sorted(CONFIG_KEYS)}")
    kind = cfg.get("kind")
    if kind not in ("mantranet", "imc"):
        raise CheckpointError(f"model config 'kind' must be 'mantranet' or 'imc', got {kind!r}")
    try:
        v = get_variant(str(cfg.get("variant", "")))
    except ValueError as e:
        raise CheckpointError(f"model config: {e}") from None
    dtype = cfg.get("dtype", "float32")
    if dtype not in DTYPES:
        raise CheckpointError(f"model config 'dtype' must be one of {DTYPES}, got {dtype!r}")
    out: dict[str, Any] = {"kind": kind, "variant": v.name}
    if kind == "mantranet":
        windows = cfg.get("windows", list(v.windows))
        if (not isinstance(windows, (list, tuple)) or not windows
                or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 and n % 2
                           for n in windows)):
            raise CheckpointError(f"model config 'windows' must be a non-empty list of odd positive ints, "
                                  f"got {windows!r}")
        feature = cfg.get("anomaly_feature", "time_z")
        if feature not in ANOMALY_FEATURES:
            raise CheckpointError(f"model config 'anomaly_feature' must be one of {sorted(ANOMALY_FEATURES)}, "
                                  f"got {feature!r}")
        out.update(windows=[int(n) for n in windows], anomaly_feature=feature)
        if "num_classes" in cfg:
            raise CheckpointError("model config 'num_classes' applies to kind 'imc' only")
    else:
        n = cfg.get("num_classes", 385)
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 2:
            raise CheckpointError(f"model config 'num_classes' must be an int >= 2, got {n!r}")
        out["num_classes"] = int(n)
        extra = sorted({"windows", "anomaly_feature"} & set(cfg))
        if extra:
            raise CheckpointError(f"model config key(s) {extra} apply to kind 'mantranet' only")
    if "dtype" in cfg:
        out["dtype"] = dtype
    return out


def model_from_config(cfg: Mapping[str, Any]) -> Any:
    """The Linen module a config describes (a ``ManTraNet`` or an ``IMCClassifier``)."""
    import jax.numpy as jnp

    from mantra_jax.models.variants import make_imc_classifier, make_mantranet

    cfg = check_config(cfg)
    dtype = jnp.bfloat16 if cfg.get("dtype") == "bfloat16" else jnp.float32
    if cfg["kind"] == "mantranet":
        return make_mantranet(cfg["variant"], windows=tuple(cfg["windows"]),
                              anomaly_feature=cfg["anomaly_feature"], dtype=dtype)
    return make_imc_classifier(cfg["variant"], num_classes=cfg["num_classes"], dtype=dtype)


def variable_shapes(model: Any) -> Any:
    """The model's variables as a tree of ``jax.ShapeDtypeStruct`` (no computation)."""
    import jax
    import jax.numpy as jnp

    return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3), jnp.float32)))


def check_variables(model: Any, variables: Any, source: str = "checkpoint") -> Any:
    """Checks ``variables`` against ``model`` (tree, shapes, float dtypes); returns them as jax arrays."""
    import jax
    import jax.numpy as jnp

    want = variable_shapes(model)
    flat_want = {jax.tree_util.keystr(k): s for k, s in jax.tree_util.tree_leaves_with_path(want)}
    try:
        flat_got = {jax.tree_util.keystr(k): np.asarray(a) for k, a in jax.tree_util.tree_leaves_with_path(variables)}
    except Exception as e:  # noqa: BLE001 - a malformed tree of any kind
        raise CheckpointError(f"{source}: variables are not a tree of arrays ({e})") from None
    missing = sorted(set(flat_want) - set(flat_got))
    extra = sorted(set(flat_got) - set(flat_want))
    if missing:
        raise CheckpointError(f"{source}: {len(missing)} variable(s) missing for this model, e.g. {missing[0]}")
    if extra:
        raise CheckpointError(f"{source}: {len(extra)} unexpected variable(s), e.g. {extra[0]}")
    for key, spec in flat_want.items():
        got = flat_got[key]
        if tuple(got.shape) != tuple(spec.shape):
            raise CheckpointError(f"{source}: variable {key} has shape {got.shape}, the model expects {spec.shape}")
        if got.dtype.kind != "f":
            raise CheckpointError(f"{source}: variable {key} has dtype {got.dtype}, expected floating point")
        if not np.all(np.isfinite(got)):
            raise CheckpointError(f"{source}: variable {key} holds NaN or infinite values")
    treedef = jax.tree_util.tree_structure(want)
    leaves = [jnp.asarray(flat_got[jax.tree_util.keystr(k)], s.dtype)
              for k, s in jax.tree_util.tree_leaves_with_path(want)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


# ---- the single-file format ----------------------------------------------------------------------------

def _to_numpy_tree(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {str(k): _to_numpy_tree(v) for k, v in tree.items()}
    return np.asarray(tree, dtype=np.float32)


def save_weights_file(path: str | os.PathLike, cfg: Mapping[str, Any], variables: Any) -> None:
    """Writes config + variables as one msgpack file, atomically (see the module docstring).

    The variables are checked against the model the config builds first, so a file never holds a
    mismatching pair.
    """
    from flax import serialization

    cfg = check_config(cfg)
    model = model_from_config(cfg)
    check_variables(model, variables, "variables to save")
    payload = {"format": FORMAT, "version": VERSION, "config": json.dumps(cfg, sort_keys=True),
               "variables": _to_numpy_tree(variables)}
    data = serialization.msgpack_serialize(payload)
    write_bytes_atomic(path, data)


def load_weights_file(path: str | os.PathLike) -> tuple[dict[str, Any], Any]:
    """Reads a single-file checkpoint. Returns ``(config, variables)`` (variables as jax arrays, checked)."""
    from flax import serialization

    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read weights file ({e.strerror or e})") from None
    try:
        payload = serialization.msgpack_restore(data)
    except Exception as e:  # noqa: BLE001 - msgpack raises several types for corrupt data
        raise CheckpointError(f"{path}: not a mantra_jax weights file (msgpack decoding failed: "
                              f"{type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a mantra_jax weights file (no '{FORMAT}' format marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: weights file version {payload.get('version')!r} is not supported "
                              f"(this code reads version {VERSION})")
    try:
        cfg = json.loads(payload["config"])
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: weights file has no valid config ({e})") from None
    try:
        cfg = check_config(cfg)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    if "variables" not in payload:
        raise CheckpointError(f"{path}: weights file has no variables")
    variables = check_variables(model_from_config(cfg), payload["variables"], str(path))
    return cfg, variables


# ---- one loader ----------------------------------------------------------------------------------------

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


def restore_orbax(directory: str | os.PathLike) -> tuple[dict[str, Any], Any]:
    """``(config, variables)`` of an Orbax training checkpoint, via the training package (imported here)."""
    try:
        from mantra_jax.train.checkpoints import restore_inference_variables
    except ImportError as e:
        raise CheckpointError(f"{directory}: reading Orbax checkpoint directories needs "
                              f"mantra_jax.train.checkpoints, which is not available ({e})") from None
    try:
        cfg, variables = restore_inference_variables(directory)
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - Orbax raises many types for a wrong directory
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{directory}: not a readable training checkpoint ({msg})") from None
    return cfg, variables


def load_model(path: str | os.PathLike, *, variant: str | None = None,
               windows: tuple[int, ...] | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """Loads any supported checkpoint. Returns ``(model, variables, config)``.

    Args:
      path: an official-layout Keras ``.h5``, a ``.msgpack`` weights file, or an Orbax checkpoint directory.
      variant, windows: only for ``.h5`` files, which carry no config (see ``load_keras_weights``):
        the release variant (default inferred from the first layer) and the window sizes.
    Raises:
      CheckpointError: missing, unreadable or inconsistent checkpoint (one-line message).
    """
    from mantra_jax.io.keras_h5 import load_keras_weights

    p = pathlib.Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist")
    if (variant is not None or windows is not None) and (p.is_dir() or not _is_hdf5(p)):
        raise CheckpointError(f"{p}: --variant/--windows apply only to Keras .h5 files (others carry a config)")
    if p.is_dir():
        cfg, raw = restore_orbax(p)
        try:
            cfg = check_config(cfg)
        except CheckpointError as e:
            raise CheckpointError(f"{p}: {e}") from None
        model = model_from_config(cfg)
        return model, check_variables(model, raw, str(p)), cfg
    if _is_hdf5(p):
        try:
            model, variables = load_keras_weights(p, windows=windows, variant=variant)
        except ValueError as e:
            raise CheckpointError(str(e).splitlines()[0]) from None
        return model, variables, check_config(_keras_config(model, variant))
    cfg, variables = load_weights_file(p)
    return model_from_config(cfg), variables, cfg


def parameter_count(variables: Any) -> dict[str, int]:
    """Numbers of scalars per top-level collection (``params``, ``batch_stats``) and in total."""
    import jax

    counts = {name: int(sum(np.prod(a.shape) for a in jax.tree.leaves(tree))) for name, tree in variables.items()}
    counts["total"] = sum(counts.values())
    return counts
