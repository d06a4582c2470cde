"""Camera-model probe (the paper's KCMI test): 7-NN accuracy of mean feature-extractor features.

    python experiments/camera_probe.py --images=DIR --checkpoint=CKPT [--k=7] [--seed=0] [--crop=512]
    python experiments/camera_probe.py --images=../shared/data/pristine/dresden_nat \
        --camera_pattern='^(.+?)_\\d+_\\d+\\.' --checkpoint=/tmp/imc385_cpu

DIR holds one sub-folder per camera model, or (with --camera_pattern) the photos themselves, the camera
being the first group of the pattern matched on the file name. CKPT is any checkpoint ``mantra detect``
reads (an IMC or ManTra-Net work directory, .msgpack or release .h5). Each photo's feature is the mean of
the feature extractor's output over its centre 512 x 512; half of each camera's photos (fixed by --seed)
fit a k-NN classifier, the other half test it (mantra_jax.eval.camera_probe). --out writes the result as
JSON (never over an existing file).
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repository root (see __init__.py)

from experiments.script_main import fail, script_main  # noqa: E402
from mantra_jax.eval.camera_probe import CENTRE, K  # noqa: E402

_IMAGES = flags.DEFINE_string("images", None, "Folder of photos grouped by camera.", required=True)
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Model checkpoint (work dir, .msgpack or .h5).", required=True)
_CAMERA_PATTERN = flags.DEFINE_string("camera_pattern", "", "Regex whose first group is the camera (flat folder).")
_K = flags.DEFINE_integer("k", K, "Neighbours (the paper's).", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the fit / test split.")
_CROP = flags.DEFINE_integer("crop", CENTRE, "Centre crop side (the paper's).", lower_bound=1)
_OUT = flags.DEFINE_string("out", "", "Write the result as JSON here (must not exist).")
flags.register_validator("out", lambda out: not (out and pathlib.Path(out).exists()),
                         "exists; not overwriting it")


def run(images: str, checkpoint: str, camera_pattern: str, k: int, seed: int, crop: int) -> dict:
    """The probe's result (``mantra_jax.eval.camera_probe.probe_accuracy``) with what it ran on."""
    from mantra_jax.eval import camera_probe as cp
    from mantra_jax.io.checkpoints import load_model

    cams = cp.camera_by_pattern(images, camera_pattern) if camera_pattern else cp.camera_folders(images)
    model, variables, cfg = load_model(checkpoint)
    start = time.perf_counter()
    n = len(cams.paths)

    def progress(i: int) -> None:
        if i % 25 == 0 or i == n:
            print(f"features: {i}/{n} photos, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    feats = cp.camera_features(cp.feature_extractor_fn(model, variables), cams.paths, crop, progress)
    result = cp.probe_accuracy(feats, cams.labels, k=k, seed=seed, cameras=cams.cameras)
    result.update(images=str(images), checkpoint=str(checkpoint), model=cfg, crop=crop,
                  photos={c: int((cams.labels == i).sum()) for i, c in enumerate(cams.cameras)},
                  feature_seconds=round(time.perf_counter() - start, 1))
    return result


def main(argv: list[str]) -> int:
    del argv
    try:
        result = run(_IMAGES.value, _CHECKPOINT.value, _CAMERA_PATTERN.value, _K.value, _SEED.value, _CROP.value)
    except (ValueError, OSError) as e:  # bad folder, unreadable photo, unusable checkpoint
        fail(1, str(e))
    print(f"{result['k']}-NN camera accuracy {result['accuracy']:.3f} (chance {result['chance']:.3f}) on "
          f"{result['test']} test / {result['fit']} fit photos of {len(result['photos'])} cameras, seed "
          f"{result['seed']}")
    for name, acc in result["per_camera"].items():
        print(f"  {name:<24} {acc:.3f}  ({result['photos'][name]} photos)")
    if _OUT.value:
        from mantra_jax.io.atomic import write_text_atomic

        write_text_atomic(_OUT.value, json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    script_main(main)
