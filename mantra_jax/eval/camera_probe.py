"""The camera-model probe of the paper's Section 3 (the KCMI test of Tables 2-5).

Protocol (paper Sec. 2.3): a photo's camera-model feature is the feature extractor's output averaged over
the centre 512 x 512 of the photo (the whole photo when a side is smaller); the photos are split at
random into two halves, one to fit a 7-nearest-neighbour classifier, the other to test it; the score is
the test accuracy. We split each camera's photos in half (``split_halves``: a camera with an odd count
puts the extra photo in the fitting half), so that every camera can be recognised; the split is fixed by
a seed. Neighbours are by Euclidean distance; a vote tie goes to the tied camera whose nearest member is
closest.

* ``centre_crop(image, size)``: (H, W, C) -> (min(H, size), min(W, size), C), centred.
* ``feature_extractor_fn(model, variables)``: images (H, W, 3) uint8 -> (D,) mean feature, for any model
  with a feature extractor (``IMCClassifier``, ``ManTraNet``): only its ``Featex`` part runs.
* ``camera_folders(root)`` / ``camera_by_pattern(root, regex)``: the photos of a folder grouped by camera.
* ``knn_predict``, ``split_halves``, ``probe_accuracy``: the classifier and the protocol.
* ``camera_probe_fn(cameras, crop=, k=, seed=)``: ``probe(model, variables)``, the whole probe of a model.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import Any, Callable, Sequence

import numpy as np

CENTRE = 512
K = 7


def centre_crop(image: np.ndarray, size: int = CENTRE) -> np.ndarray:
    """The centre ``size`` x ``size`` of an (H, W, C) image, or its whole extent along a shorter side."""
    if image.ndim != 3:
        raise ValueError(f"centre_crop expects an (H, W, C) image, got shape {image.shape}")
    if size < 1:
        raise ValueError(f"crop size must be >= 1, got {size}")
    h, w = image.shape[:2]
    ch, cw = min(h, size), min(w, size)
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top:top + ch, left:left + cw]


def feature_extractor_fn(model: Any, variables: Any) -> Callable[[np.ndarray], np.ndarray]:
    """``f(image) -> (D,) float64``: the spatial mean of ``model``'s feature-extractor output for one
    (H, W, 3) uint8 image (preprocessed to [-1, 1]); moving statistics, no batch statistics. Jitted once
    per image shape."""
    import jax
    import jax.numpy as jnp

    from mantra_jax.io.images import preprocess
    from mantra_jax.models.featex import FeatureExtractor

    if not hasattr(model, "featex"):
        raise ValueError(f"{type(model).__name__} has no feature extractor (expected an IMC or ManTra-Net model)")
    featex = model.featex.module(compute=model.compute.resolve(jax.default_backend()))  # for where it runs
    sub = {"params": variables["params"][FeatureExtractor.SCOPE]}
    stats = (variables.get("batch_stats") or {}).get(FeatureExtractor.SCOPE)
    if stats:
        sub["batch_stats"] = stats

    @jax.jit
    def mean_feature(v: Any, x: jnp.ndarray) -> jnp.ndarray:
        return jnp.mean(featex.apply(v, x[None], train=False)[0], axis=(0, 1))

    def f(image: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
        return np.asarray(mean_feature(sub, jnp.asarray(preprocess(image))), np.float64)

    return f


@dataclasses.dataclass(frozen=True)
class CameraSet:
    """Photos grouped by camera: ``paths[i]`` was taken with ``cameras[labels[i]]``."""

    paths: tuple[pathlib.Path, ...]
    labels: np.ndarray
    cameras: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.cameras) < 2:
            raise ValueError(f"the probe needs photos of at least 2 cameras, found {len(self.cameras)}")


def _is_image(p: pathlib.Path) -> bool:
    from mantra_jax.io.images import IMAGE_EXTENSIONS

    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _camera_set(groups: dict[str, list[pathlib.Path]], root: pathlib.Path) -> CameraSet:
    groups = {k: sorted(v) for k, v in sorted(groups.items()) if v}
    if not groups:
        raise ValueError(f"{root}: no photos found")
    paths = [p for v in groups.values() for p in v]
    labels = np.concatenate([np.full(len(v), i, np.int64) for i, v in enumerate(groups.values())])
    return CameraSet(tuple(paths), labels, tuple(groups))


def camera_folders(root: str | pathlib.Path) -> CameraSet:
    """Photos in ``root/<camera>/`` (one sub-folder per camera model, searched recursively)."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    groups = {d.name: [p for p in d.rglob("*") if _is_image(p)] for d in root.iterdir()
              if d.is_dir() and not d.name.startswith(".")}
    return _camera_set(groups, root)


def camera_by_pattern(root: str | pathlib.Path, pattern: str) -> CameraSet:
    """Photos directly in ``root``, the camera being the first group of ``pattern`` matched at the start
    of the file name (e.g. ``^(.+?)_\\d+_\\d+\\.`` for ``Nikon_D70s_0_21853.JPG``)."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"bad camera pattern {pattern!r}: {e}") from None
    if regex.groups < 1:
        raise ValueError(f"camera pattern {pattern!r} needs a group, e.g. '^([^_]+)_'")
    groups: dict[str, list[pathlib.Path]] = {}
    for p in root.iterdir():
        if _is_image(p):
            m = regex.match(p.name)
            if m is None:
                raise ValueError(f"{p.name} does not match the camera pattern {pattern!r}")
            groups.setdefault(m.group(1), []).append(p)
    return _camera_set(groups, root)


def split_halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(fit, test)``: each camera's photos shuffled with ``seed`` and halved (the extra photo of
    an odd count to ``fit``). Both sorted."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fit, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_fit = len(idx) - len(idx) // 2
        fit.extend(idx[:n_fit])
        test.extend(idx[n_fit:])
    return np.sort(np.asarray(fit, np.int64)), np.sort(np.asarray(test, np.int64))


def knn_predict(fit_x: np.ndarray, fit_y: np.ndarray, test_x: np.ndarray, k: int = K) -> np.ndarray:
    """k-nearest-neighbour labels of ``test_x`` (M, D) from ``fit_x`` (N, D), ``fit_y`` (N,) int (Euclidean;
    k capped at N; a vote tie goes to the tied label whose nearest member is closest)."""
    fit_x, test_x, fit_y = np.asarray(fit_x, np.float64), np.asarray(test_x, np.float64), np.asarray(fit_y)
    if fit_x.ndim != 2 or test_x.ndim != 2 or fit_x.shape[1] != test_x.shape[1] or fit_y.shape != fit_x.shape[:1]:
        raise ValueError(f"expected fit (N, D), labels (N,), test (M, D); got {fit_x.shape}, {fit_y.shape}, "
                         f"{test_x.shape}")
    if len(fit_x) == 0 or k < 1:
        raise ValueError("knn needs at least one fitting sample and k >= 1")
    k = min(k, len(fit_x))
    d2 = np.sum((test_x[:, None, :] - fit_x[None, :, :]) ** 2, axis=-1)  # (M, N)
    order = np.argsort(d2, axis=1, kind="stable")[:, :k]
    out = np.empty(len(test_x), fit_y.dtype)
    for i, nn_idx in enumerate(order):
        votes = fit_y[nn_idx]
        values, counts = np.unique(votes, return_counts=True)
        tied = set(values[counts == counts.max()])
        out[i] = next(v for v in votes if v in tied)  # neighbours are nearest first
    return out


def probe_accuracy(features: np.ndarray, labels: np.ndarray, *, k: int = K, seed: int = 0,
                   cameras: Sequence[str] | None = None) -> dict[str, Any]:
    """The protocol on precomputed features (N, D): ``{"accuracy", "per_camera" {name: accuracy},
    "fit", "test" (counts), "k", "seed", "chance" (the test share of the largest camera)}``."""
    features, labels = np.asarray(features, np.float64), np.asarray(labels)
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"expected features (N, D) and labels (N,), got {features.shape} and {labels.shape}")
    fit, test = split_halves(labels, seed)
    if len(test) == 0:
        raise ValueError("too few photos: the test half is empty")
    pred = knn_predict(features[fit], labels[fit], features[test], k)
    truth = labels[test]
    names = list(cameras) if cameras is not None else [str(c) for c in np.unique(labels)]
    per = {names[c]: float(np.mean(pred[truth == c] == c)) for c in np.unique(truth)}
    return {"accuracy": float(np.mean(pred == truth)), "per_camera": per, "fit": int(len(fit)),
            "test": int(len(test)), "k": int(min(k, len(fit))), "seed": int(seed),
            "chance": float(np.max(np.bincount(truth)) / len(truth))}


def camera_features(feature_fn: Callable[[np.ndarray], np.ndarray], paths: Sequence[pathlib.Path],
                    crop: int = CENTRE, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """(N, D) mean features of the photos' centre crops (read with ``mantra_jax.io.images.read_image``)."""
    from mantra_jax.io.images import read_image

    out = []
    for i, p in enumerate(paths):
        out.append(feature_fn(centre_crop(read_image(p), crop)))
        if progress is not None:
            progress(i + 1)
    return np.stack(out)


def camera_probe_fn(cameras: CameraSet, *, crop: int, k: int, seed: int) -> Callable[[Any, Any], dict[str, Any]]:
    """``probe(model, variables)``: ``probe_accuracy`` of the model's features (``feature_extractor_fn``)
    of the centre ``crop`` of every photo of ``cameras``."""

    def probe(model: Any, variables: Any) -> dict[str, Any]:
        feats = camera_features(feature_extractor_fn(model, variables), cameras.paths, crop)
        return probe_accuracy(feats, cameras.labels, k=k, seed=seed, cameras=cameras.cameras)

    return probe
