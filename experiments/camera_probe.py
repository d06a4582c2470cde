"""Camera-model probe (the paper's KCMI test): 7-NN accuracy of mean feature-extractor features.

    python experiments/camera_probe.py --images=DIR --checkpoint=CKPT [--k=7] [--seed=0] [--crop=512]
    python experiments/camera_probe.py --images=../shared/data/pristine/dresden_nat \
        --camera-pattern='^(.+?)_\\d+_\\d+\\.' --checkpoint=/tmp/imc385_cpu

DIR holds one sub-folder per camera model, or (with --camera-pattern) the photos themselves, the camera
being the first group of the pattern matched on the file name. CKPT is any checkpoint ``mantra detect``
reads (an IMC or ManTra-Net work directory, .msgpack or release .h5). Each photo's feature is the mean of
the feature extractor's output over its centre 512 x 512; half of each camera's photos (fixed by --seed)
fit a k-NN classifier, the other half test it (mantra_jax.eval.camera_probe). --out writes the result as
JSON (never over an existing file).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="camera_probe.py", description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True, help="folder of photos grouped by camera")
    p.add_argument("--checkpoint", required=True, help="model checkpoint (work dir, .msgpack or .h5)")
    p.add_argument("--camera-pattern", default="", help="regex whose first group is the camera (flat folder)")
    p.add_argument("--k", type=int, default=7, help="neighbours (default 7, the paper's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fit / test split")
    p.add_argument("--crop", type=int, default=512, help="centre crop side (default 512, the paper's)")
    p.add_argument("--out", default="", help="write the result as JSON here (must not exist)")
    args = p.parse_args(argv)
    if args.k < 1 or args.crop < 1:
        p.error("--k and --crop must be >= 1")
    if args.out and pathlib.Path(args.out).exists():
        p.error(f"--out {args.out} exists; not overwriting it")
    return args


def run(args: argparse.Namespace) -> dict:
    from mantra_jax.eval import camera_probe as cp
    from mantra_jax.io.checkpoints import load_model

    cams = (cp.camera_by_pattern(args.images, args.camera_pattern) if args.camera_pattern
            else cp.camera_folders(args.images))
    model, variables, cfg = load_model(args.checkpoint)
    start = time.perf_counter()
    n = len(cams.paths)

    def progress(i: int) -> None:
        if i % 25 == 0 or i == n:
            print(f"features: {i}/{n} photos, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    feats = cp.camera_features(cp.feature_extractor_fn(model, variables), cams.paths, args.crop, progress)
    result = cp.probe_accuracy(feats, cams.labels, k=args.k, seed=args.seed, cameras=cams.cameras)
    result.update(images=str(args.images), checkpoint=str(args.checkpoint), model=cfg, crop=args.crop,
                  photos={c: int((cams.labels == i).sum()) for i, c in enumerate(cams.cameras)},
                  feature_seconds=round(time.perf_counter() - start, 1))
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
    except (ValueError, OSError) as e:  # bad folder, unreadable photo, unusable checkpoint
        print(f"camera_probe.py: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"{result['k']}-NN camera accuracy {result['accuracy']:.3f} (chance {result['chance']:.3f}) on "
          f"{result['test']} test / {result['fit']} fit photos of {len(result['photos'])} cameras, seed "
          f"{result['seed']}")
    for name, acc in result["per_camera"].items():
        print(f"  {name:<24} {acc:.3f}  ({result['photos'][name]} photos)")
    if args.out:
        from mantra_jax.io.atomic import write_text_atomic

        write_text_atomic(args.out, json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
