"""The fixed IMC-385 validation and test sets, materialised once as a tensorflow-datasets builder.

Scoring on samples re-synthesised at every run would tie results to the library versions of the machine
(OpenCV's resamplers, libjpeg ...). ``prepare_imc385`` synthesises the validation and test splits once
(``IMCSource`` with the config's seed, records 0..n-1) and writes them as array_record files; every later
run, on any machine, reads the identical bytes with ``imc385_source``, a grain-compatible random-access
source, without the photos.

What works without TensorFlow (tensorflow-datasets 4.9.x, checked in tests/datasets/test_imc385.py):
``GeneratorBasedBuilder`` + ``file_format="array_record"`` + ``download_and_prepare()``, features built
from ``tfds.features.Tensor`` (encoding zlib) and ``tfds.features.Scalar``, ``DatasetInfo`` built
directly (``dataset_info_from_configs`` looks for metadata files beside the module), and reading with
``as_data_source`` / ``tfds.builder_from_directory``. ``tfds.features.Image`` does NOT work (its PNG codec
needs TensorFlow), nor does ``as_dataset`` (tf.data).

Records: ``{"image": (crop, crop, 3) uint8, "label": int32 class, "index": int64 record id}``, stored in
generation order (shuffling disabled), so ``source[j]["index"] == j``.

Layout: ``<data_dir>/imc385/<config name>/1.0.0/``. The config name carries the sample counts, the seed
and a fingerprint of the inputs (photo keys and fixed splits, patch settings, the catalogue's type names),
so different inputs never share a folder and the same inputs reuse it. The fingerprint sees photo keys,
not their pixels: replacing a photo's content under the same name requires a new ``data_dir``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from mantra_jax.data.imc_source import CROP_SIZE, IMCSource, default_catalogue
from mantra_jax.data.patches import DEFAULT_MEASURE, MIN_DEVIATION, PATCH_SIZE, PatchBank, check_measure
from mantra_jax.data.photos import PhotoSpec, resolve_photos
from mantra_jax.data.rng import check_seed

NAME = "imc385"
VERSION = "1.0.0"
SPLITS = ("validation", "test")
DEFAULT_SAMPLES = 3850  # 10 per class on average.


@dataclasses.dataclass(eq=False)
class Imc385Config(tfds.core.BuilderConfig):
    """Which samples the fixed sets hold; build one with ``imc385_config``."""

    validation_samples: int = DEFAULT_SAMPLES
    test_samples: int = DEFAULT_SAMPLES
    seed: int = 0
    crop_size: int = CROP_SIZE
    patch_size: int = PATCH_SIZE
    min_deviation: float = MIN_DEVIATION
    measure: str = DEFAULT_MEASURE
    fingerprint: str = ""


def imc385_config(photos: PhotoSpec = None, *, validation_samples: int = DEFAULT_SAMPLES,
                  test_samples: int = DEFAULT_SAMPLES, seed: int = 0, crop_size: int = CROP_SIZE,
                  patch_size: int = PATCH_SIZE, min_deviation: float = MIN_DEVIATION,
                  measure: str = DEFAULT_MEASURE) -> Imc385Config:
    """The config of the fixed sets for these photos (a folder, PhotoRefs, or None for scikit-image's)."""
    check_seed(seed)
    check_measure(measure)
    if validation_samples < 1 or test_samples < 1:
        raise ValueError(f"sample counts must be positive, got {validation_samples}, {test_samples}")
    refs = resolve_photos(photos)
    identity = {
        "photos": sorted((r.key, r.split or "") for r in refs),
        "patch_size": patch_size, "min_deviation": float(min_deviation), "measure": measure, "crop_size": crop_size,
        "catalogue": [m.name for m in default_catalogue()],
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return Imc385Config(
        name=f"v{validation_samples}_t{test_samples}_s{seed}_{digest}",
        description=f"IMC-385 fixed sets: {validation_samples} validation / {test_samples} test samples, seed "
                    f"{seed}, {len(refs)} photos, fingerprint {digest}",
        validation_samples=int(validation_samples), test_samples=int(test_samples), seed=int(seed),
        crop_size=int(crop_size), patch_size=int(patch_size), min_deviation=float(min_deviation), measure=measure,
        fingerprint=digest)


class Imc385(tfds.core.GeneratorBasedBuilder):
    """tfds builder of the fixed IMC-385 validation / test sets (array_record, numpy-only features)."""

    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {"1.0.0": "Validation and test splits of IMCSource samples."}
    # tfds derives this from the top-level package's resources, which fails under setuptools' editable
    # finder (a namespace path that is not a folder); the builder's own file is all tfds needs.
    code_path = epath.Path(__file__)

    def __init__(self, *, config: Imc385Config, data_dir: str | os.PathLike, photos: PhotoSpec = None, **kwargs):
        self._photos = photos
        super().__init__(config=config, data_dir=os.fspath(data_dir), file_format="array_record", **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config.crop_size
        return tfds.core.DatasetInfo(
            builder=self,
            description="Manipulated 128x128 crops of pristine patches with their manipulation class "
                        "(ManTra-Net IMC-385 task).",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(c, c, 3), dtype=np.uint8, encoding="zlib"),
                "label": tfds.features.Scalar(dtype=np.int32),
                "index": tfds.features.Scalar(dtype=np.int64),
            }),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download: the photos are local.
        return {split: self._generate_examples(split) for split in SPLITS}

    def _generate_examples(self, split: str):
        cfg = self.builder_config
        count = cfg.validation_samples if split == "validation" else cfg.test_samples
        bank = PatchBank.build(self._photos, split, size=cfg.patch_size, min_deviation=cfg.min_deviation,
                              measure=cfg.measure)
        source = IMCSource(bank, split, seed=cfg.seed, num_records=count, crop_size=cfg.crop_size)
        for i in range(count):
            record = source[i]
            yield i, {"image": record["image"], "label": record["label"], "index": np.int64(i)}


def prepare_imc385(photos: PhotoSpec, data_dir: str | os.PathLike, config: Imc385Config | None = None) -> pathlib.Path:
    """Writes the fixed sets once (a no-op when already prepared) and returns their folder."""
    config = imc385_config(photos) if config is None else config
    builder = Imc385(config=config, data_dir=data_dir, photos=photos)
    builder.download_and_prepare()
    return pathlib.Path(builder.data_dir)


def imc385_dir(data_dir: str | os.PathLike, config: Imc385Config) -> pathlib.Path:
    """The folder where ``config``'s fixed sets live under ``data_dir``."""
    return pathlib.Path(data_dir) / NAME / config.name / VERSION


def imc385_source(dataset_dir: str | os.PathLike, split: str):
    """Random-access source of a prepared split (``len``, ``[j]`` -> dict of numpy arrays), for grain.

    Args:
      dataset_dir: the folder returned by ``prepare_imc385`` (or ``imc385_dir``).
      split: 'validation' or 'test'.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = pathlib.Path(dataset_dir)
    if not (path / "dataset_info.json").is_file():
        raise ValueError(f"{os.fspath(path)} holds no prepared dataset (no dataset_info.json); run prepare_imc385")
    return tfds.builder_from_directory(os.fspath(path)).as_data_source(split=split)
