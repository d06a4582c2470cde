"""Official-layout Keras HDF5 weight files <-> this project's variables.

Layout (../shared/spec/ARCHITECTURE.md section 6): top-level groups ``Featex``, ``outlierTrans``, ``bnorm``,
``glbStd``, ``cLSTM``, ``pred``, each with a ``weight_names`` attribute listing ``layer/var:0`` entries
stored at ``group/layer/var:0``; layer names may carry a numeric suffix (``bnorm_1``). Weightless groups
(``img_in``, ``nestedAvgFeatex``...) are ignored. The fixed SRM kernel (``b1c1/srm:0``) is optional and,
when present, must equal ``mantra_jax.ops.srm.srm_kernel()``.

Explicit name map (file -> variables):

    Featex/b1c1/{regular_kernel, bayar_kernel}  -> params/Featex/b1c1/{...}
    Featex/<layer>/{kernel, bias}               -> params/Featex/<layer>/{kernel, bias}
    outlierTrans/kernel                         -> params/LADN/outlierTrans/kernel
    glbStd/min_std                              -> params/LADN/glbStd/min_std
    cLSTM/{kernel, recurrent_kernel, bias}      -> params/LADN/cLSTM/{...}
    pred/{kernel, bias}                         -> params/LADN/pred/{...}
    bnorm/{moving_mean, moving_variance}        -> batch_stats/LADN/bnorm/{...}
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any, Mapping

import numpy as np

from mantra_jax.errors import WeightFileError
from mantra_jax.io.atomic import atomic_path
from mantra_jax.models.featex import FeatureExtractor
from mantra_jax.models.first_layer import FirstLayer
from mantra_jax.models.ladn import AnomalyDetector
from mantra_jax.ops.srm import srm_kernel


def release_shapes(plain: int, trunk, transform_features: int) -> dict[str, tuple]:
    """Expected 'group/layer/var' -> shape for a release model with ``plain`` first-layer filters: the
    file names of the variables of that ``ManTraNet`` (traced, nothing computed)."""
    return dict(_release_shapes(int(plain), tuple(tuple(b) for b in trunk), int(transform_features)))


@functools.lru_cache(maxsize=None)
def _release_shapes(plain: int, trunk: tuple, transform_features: int) -> tuple[tuple[str, tuple], ...]:
    from mantra_jax.models.config import variable_shapes
    from mantra_jax.models.featex import FeatexConfig
    from mantra_jax.models.mantranet import ManTraNet

    shapes = variable_shapes(ManTraNet(featex=FeatexConfig(plain, trunk, transform_features)))
    return tuple((key, tuple(value.shape)) for key, value in _weight_items(shapes))


def _clean_layer(name: str) -> str:
    return re.sub(r"_\d+$", "", name)


# HDF5 filters a weight file may use: those built into every HDF5 library (deflate, shuffle, fletcher32,
# szip, nbit, scale-offset) and LZF, which h5py ships. Anything else is a plug-in the loader will not run.
_STANDARD_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset",
                     32000: "lzf"}
_MAX_LINK_HOPS = 8


def _walk(f, path: str, inside: str, where: str, hops: int = 0):
    """The object at absolute ``path`` of open file ``f``, following only hard links and soft links whose
    target stays under ``inside``; external links (other files) and anything leaving ``inside`` are refused."""
    import h5py

    obj = f["/"]
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        if not isinstance(obj, h5py.Group):
            raise WeightFileError(f"{where}: {'/'.join(parts[:i])} is not a group")
        link = obj.get(part, getlink=True)
        if link is None:
            return None
        here = "/" + "/".join(parts[: i + 1])
        if isinstance(link, h5py.ExternalLink):
            raise WeightFileError(f"{where}: {here} is an external link to {link.filename}:{link.path}; "
                                  "weight files may not refer to other files")
        if isinstance(link, h5py.SoftLink):
            target = link.path if link.path.startswith("/") else obj.name.rstrip("/") + "/" + link.path
            target = "/" + "/".join(_normalise(target))
            if not (target + "/").startswith(inside.rstrip("/") + "/") or hops >= _MAX_LINK_HOPS:
                raise WeightFileError(f"{where}: {here} is a soft link to {link.path}, outside {inside}")
            obj = _walk(f, target, inside, where, hops + 1)
            if obj is None:
                raise WeightFileError(f"{where}: {here} is a soft link to {link.path}, which does not exist")
        else:
            obj = obj[part]
    return obj


def _normalise(path: str) -> list[str]:
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return out


def _check_storage(dataset, where: str) -> None:
    """Refuses, from the dataset's metadata alone, storage that reads outside the file or runs plug-ins."""
    import h5py

    if dataset.is_virtual:
        raise WeightFileError(f"{where} is a virtual dataset (it maps other files); weight files may not hold one")
    plist = dataset.id.get_create_plist()
    if plist.get_external_count() > 0:
        name = plist.get_external(0)[0]
        name = name.decode(errors="replace") if isinstance(name, bytes) else name
        raise WeightFileError(f"{where} keeps its data in an external file ({name}); weight files may not")
    if plist.get_layout() not in (h5py.h5d.COMPACT, h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED):
        raise WeightFileError(f"{where} has an unsupported storage layout")
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code not in _STANDARD_FILTERS:
            raise WeightFileError(f"{where} uses HDF5 filter {code}, not one of the standard ones "
                                  f"({', '.join(sorted(_STANDARD_FILTERS.values()))})")


def _release_expectation(declared: Mapping[str, tuple], path: Any) -> dict[str, tuple]:
    """Expected shapes of a release-trunk file, the plain-filter count taken from the declared first layer."""
    from mantra_jax.models.featex import RELEASE_TRUNK

    plain = _plain_from_shape(declared.get("Featex/b1c1/regular_kernel"), path)
    exp = release_shapes(plain, RELEASE_TRUNK, 256)
    return {**exp, "Featex/b1c1/srm": (5, 5, 3, 9)}


def read_keras_h5(path: str | os.PathLike, expected=None) -> dict[str, np.ndarray]:
    """Reads every weight of an official-layout file as 'group/layer/var' -> float32 array.

    Layer-name suffixes are stripped (``bnorm_1`` -> ``bnorm``); the group keeps its own name.
    Nothing is read before every listed dataset has passed, from its metadata alone: a hard link or a soft
    link inside its group (no external link), storage inside this file (no external storage, no virtual
    dataset), standard filters only, numeric dtype, and the shape ``expected`` gives it.

    Args:
      path: the ``.h5`` file.
      expected: ``declared -> {key: shape}``: called with every dataset's declared shape (by key), returns
        the shapes the model needs; a dataset it does not name, or whose declared shape differs, is refused
        before anything is read. Default: the release trunk with the declared first-layer width.
    """
    import h5py

    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise WeightFileError(f"{path}: not a readable HDF5 weight file ({e})") from None
    out: dict[str, np.ndarray] = {}
    with f:
        base = "/model_weights" if isinstance(f.get("model_weights", getlink=True), h5py.HardLink) else "/"
        root = f[base]
        found: dict[str, tuple[Any, str]] = {}
        for group_name in root:
            gpath = base.rstrip("/") + "/" + group_name
            group = _walk(f, gpath, gpath, f"{path}: {group_name}")
            if not isinstance(group, h5py.Group):
                continue
            names = group.attrs.get("weight_names", None)
            if names is None:
                continue
            for raw in names:
                raw = raw.decode() if isinstance(raw, bytes) else str(raw)
                where = f"{path}: dataset {group_name}/{raw}"
                dataset = _walk(f, gpath + "/" + raw, gpath, where)
                if dataset is None:
                    raise WeightFileError(f"{path}: {group_name} lists {raw} but has no such dataset")
                layer, _, var = raw.rpartition("/")
                key = f"{group_name}/{_clean_layer(layer.split('/')[-1])}/{var.split(':')[0]}"
                if key in found:
                    raise WeightFileError(f"{path}: duplicate dataset {key}")
                kind = getattr(getattr(dataset, "dtype", None), "kind", None)
                if not isinstance(dataset, h5py.Dataset) or kind not in ("f", "i", "u"):
                    what = "not a dataset" if kind is None else f"{dataset.dtype} data, not numbers"
                    raise WeightFileError(f"{where} holds {what}")
                _check_storage(dataset, where)
                found[key] = (dataset, where)
        declared = {key: tuple(d.shape) for key, (d, _) in found.items()}
        want = (_release_expectation(declared, path) if expected is None else expected(declared))
        extra = sorted(k for k in declared if k not in want)
        if extra:
            raise WeightFileError(f"{path}: unexpected dataset(s) {', '.join(extra)}")
        for key, shape in declared.items():
            if shape != tuple(want[key]):
                raise WeightFileError(f"{path}: dataset {key} has shape {shape}, expected {tuple(want[key])}")
        for key, (dataset, where) in found.items():
            try:
                out[key] = np.asarray(dataset[()], dtype=np.float32)
            except (OSError, ValueError) as e:
                raise WeightFileError(f"{where} cannot be read ({e})") from None
    return out


def _plain_from_shape(shape, path: Any) -> int:
    if shape is None:
        raise WeightFileError(f"{path}: missing dataset Featex/b1c1/regular_kernel")
    if len(shape) != 4 or tuple(shape[:3]) != (5, 5, 3):
        raise WeightFileError(f"{path}: Featex/b1c1/regular_kernel has shape {tuple(shape)}, expected (5, 5, 3, F-12)")
    return int(shape[3])


def infer_plain_filters(weights: Mapping[str, np.ndarray], path: Any = "") -> int:
    k = weights.get("Featex/b1c1/regular_kernel")
    return _plain_from_shape(None if k is None else k.shape, path)


def weights_to_variables(weights: Mapping[str, np.ndarray], *, trunk=None, transform_features: int = 256,
                         path: Any = "") -> dict[str, Any]:
    """Checks names/shapes/values and maps a 'group/layer/var' dict to ``{"params", "batch_stats"}``."""
    from mantra_jax.io.variables import key_differences
    from mantra_jax.models.featex import RELEASE_TRUNK

    trunk = RELEASE_TRUNK if trunk is None else trunk
    plain = infer_plain_filters(weights, path)
    expected = release_shapes(plain, trunk, transform_features)
    weights = dict(weights)
    srm = weights.pop("Featex/b1c1/srm", None)
    if srm is not None:
        if srm.shape != (5, 5, 3, 9) or not np.allclose(srm, srm_kernel(), atol=1e-6):
            raise WeightFileError(f"{path}: Featex/b1c1/srm differs from the fixed SRM kernel")
    missing, extra = key_differences(expected, weights)
    if missing:
        raise WeightFileError(f"{path}: missing dataset(s) {', '.join(missing)}")
    if extra:
        raise WeightFileError(f"{path}: unexpected dataset(s) {', '.join(extra)}")
    for key, shape in expected.items():
        if weights[key].shape != shape:
            raise WeightFileError(f"{path}: dataset {key} has shape {weights[key].shape}, expected {shape}")
        if not np.all(np.isfinite(weights[key])):
            raise WeightFileError(f"{path}: dataset {key} holds NaN or infinite values")

    # The file's groups are our scopes (``_weight_items``): the feature extractor's, and the LADN's
    # layers (each its own group) with its batch norm's statistics; the LADN itself has no group.
    featex_scope, ladn_scope, bnorm = FeatureExtractor.SCOPE, AnomalyDetector.SCOPE, AnomalyDetector.BNORM
    featex: dict[str, dict[str, np.ndarray]] = {}
    ladn: dict[str, dict[str, np.ndarray]] = {}
    stats: dict[str, dict[str, np.ndarray]] = {}
    for key, value in weights.items():
        group, layer, var = key.split("/")
        if group == featex_scope:
            featex.setdefault(layer, {})[var] = value
        elif group == bnorm:
            stats.setdefault(bnorm, {})[var] = value
        else:
            ladn.setdefault(group, {})[var] = value
    return {"params": {featex_scope: featex, ladn_scope: ladn}, "batch_stats": {ladn_scope: stats}}


def _weight_items(variables: Mapping[str, Any]):
    """('group/layer/var', leaf) of ``{"params", "batch_stats"}`` in the file's naming."""
    featex, ladn = FeatureExtractor.SCOPE, AnomalyDetector.SCOPE
    for layer, vs in variables["params"][featex].items():
        for var, value in vs.items():
            yield f"{featex}/{layer}/{var}", value
    for group, vs in variables["params"][ladn].items():
        for var, value in vs.items():
            yield f"{group}/{group}/{var}", value
    for var, value in variables["batch_stats"][ladn][AnomalyDetector.BNORM].items():
        yield f"{AnomalyDetector.BNORM}/{AnomalyDetector.BNORM}/{var}", value


def variables_to_weights(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Inverse of :func:`weights_to_variables` (without SRM): ``{"params", "batch_stats"}`` -> flat dict."""
    return {key: np.asarray(value, np.float32) for key, value in _weight_items(variables)}


def save_keras_h5(path: str | os.PathLike, weights: Mapping[str, np.ndarray], include_srm: bool = False) -> None:
    """Writes 'group/layer/var' arrays in the official layout, atomically."""
    import h5py

    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    for key, value in weights.items():
        group, layer, var = key.split("/")
        groups.setdefault(group, []).append((f"{layer}/{var}:0", value))
    if include_srm:
        groups.setdefault(FeatureExtractor.SCOPE, []).insert(1, (f"{FirstLayer.SCOPE}/srm:0", srm_kernel()))
    path = os.fspath(path)
    with atomic_path(path, suffix=".h5.tmp") as tmp:  # the one atomic writer (mode follows the umask)
        with h5py.File(tmp, "w") as f:
            f.attrs["layer_names"] = np.array(list(groups), dtype=object)
            f.attrs["backend"] = "jax"
            for group, items in groups.items():
                g = f.create_group(group)
                g.attrs["weight_names"] = np.array([n for n, _ in items], dtype=object)
                for name, value in items:
                    g.create_dataset(name, data=np.asarray(value, np.float32))


def default_variant_for(plain_filters: int) -> str:
    """The release variant a first-layer width implies: 4 -> ptrain4, 20 -> ptrain0."""
    if plain_filters == 4:
        return "ptrain4"
    if plain_filters == 20:
        return "ptrain0"
    raise WeightFileError(f"first layer has {plain_filters} plain filters; releases have 4 or 20")


def load_keras_weights(path: str | os.PathLike, windows=None, *, variant: str | None = None,
                       anomaly_feature="time_z", compute=None):
    """Loads an official-layout Keras HDF5 file.

    Args:
      path: the ``.h5`` file.
      windows: window sizes of the anomaly feature; default: the variant's.
      variant: release preset to use; default: inferred from the first-layer width (4 plain filters ->
        ``ptrain4``; 20 -> ``ptrain0``, which has a tanh ``transform``; pass ``ptrain1`` for the linear one).
      anomaly_feature: registry name or function (the weights fit ``time_z``'s 64 input channels).
      compute: the model's ``mantra_jax.models.compute.Compute`` (default: ``Compute()``, float32).
    Returns:
      ``(model, variables)``: ``model.apply(variables, x)`` with x float32 (B, H, W, 3) in [-1, 1] returns the
      dict of intermediates whose ``"pred"`` is the (B, H, W, 1) probability map (inference mode).
    """
    import jax
    import jax.numpy as jnp

    from mantra_jax.models.compute import Compute
    from mantra_jax.models.config import variable_shapes
    from mantra_jax.models.variants import get_variant, make_mantranet

    chosen = {}

    def expected(declared):  # the variant's shapes, checked against the file's metadata before any read
        plain = _plain_from_shape(declared.get("Featex/b1c1/regular_kernel"), path)
        v = chosen["v"] = get_variant(variant or default_variant_for(plain))
        if v.plain_filters != plain:
            raise WeightFileError(f"{path}: variant {v.name} has {v.plain_filters} plain filters, the file has {plain}")
        return {**release_shapes(plain, v.trunk, v.transform_features), "Featex/b1c1/srm": (5, 5, 3, 9)}

    weights = read_keras_h5(path, expected)
    v = chosen["v"]
    variables = weights_to_variables(weights, trunk=v.trunk, transform_features=v.transform_features, path=path)
    model = make_mantranet(v, windows=windows, anomaly_feature=anomaly_feature,
                           compute=Compute() if compute is None else compute)
    want = jax.tree.map(lambda s: s.shape, variable_shapes(model))
    got = jax.tree.map(lambda a: a.shape, variables)
    if want != got:
        raise WeightFileError(f"{path}: weights do not fit a {v.name} model with feature {anomaly_feature!r}")
    return model, jax.tree.map(jnp.asarray, variables)
