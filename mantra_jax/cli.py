"""The ``mantra`` command: detect, eval, robustness, info, convert-keras.

    mantra detect PATH... --checkpoint CKPT --out DIR [--roi x,y,w,h] [--tile N] [--max-pixels N]
    mantra eval --checkpoint CKPT (--pairs PAIRS.csv | --tp-gt DIR | --json LIST.json) --out DIR
    mantra eval --checkpoint CKPT --benchmark NAME --data-dir D [--manual-dir M] --out DIR
    mantra robustness --checkpoint CKPT (--pairs ... | --tp-gt ... | --json ...) --out DIR [--attacks ...]
    mantra info CKPT
    mantra convert-keras IN.h5 OUT.msgpack

CKPT is an Orbax training checkpoint directory of this project, an official-layout Keras ``.h5`` or a
``.msgpack`` single-file export (``mantra_jax.io.checkpoints``). ``convert-keras`` writes the single-file
format: one portable file holding the model config and the weights, no pickle, loadable without Orbax.

Errors are one line on stderr and a non-zero exit status, never a traceback (``MANTRA_DEBUG=1`` shows
one): 0 when every input was processed, 1 when some inputs failed while the others were processed, 2 for a
usage or setup error (bad option, unreadable checkpoint, an output location that cannot be used, found
before the first image), 3 for an unexpected internal error, 130 when interrupted (SIGINT or SIGTERM).
What is refused, resumed and never overwritten: README, "Inputs and outputs".
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from typing import Any, Callable, Sequence

EXIT_OK, EXIT_INPUTS_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_AUTO_TILE_PIXELS = 1 << 20
NO_CHECKPOINT = ("a checkpoint is required: pass --checkpoint CKPT (an Orbax checkpoint directory of this "
                 "project, an official-layout Keras .h5 or a .msgpack weights file); default weights are not "
                 "shipped yet")


class CliError(Exception):
    """A usage or setup error, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line (no usage block) and exits with status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _windows(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated odd integers, got {text!r}") from None


# ---- shared pieces -------------------------------------------------------------------------------------

def _require_checkpoint(args: argparse.Namespace) -> None:
    if not args.checkpoint:
        raise CliError(NO_CHECKPOINT)


def load_detector(path: str | None, **kwargs: Any):
    """(model, variables, cfg) of a detection checkpoint; CliError when absent or not a ManTra-Net."""
    if not path:
        raise CliError(NO_CHECKPOINT)
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None  # load_model says what is missing
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise CliError(f"checkpoint {path} is not a regular file or a folder (a device or FIFO is never read)")
    from mantra_jax.io.checkpoints import load_model

    model, variables, cfg = load_model(path, **kwargs)
    if cfg["kind"] != "mantranet":
        raise CliError(f"{path} holds an IMC classifier (kind {cfg['kind']!r}); detection needs a ManTra-Net "
                       "checkpoint")
    return model, variables, cfg


def make_predictor(model: Any, variables: Any, tile: int | None, auto_tile_pixels: int,
                   bounded: bool = False) -> Callable[[Any], tuple[Any, bool]]:
    """``image (H, W, 3) uint8 -> (map (H, W) float32, tiled)``: whole image, or exact tiling (see predict_auto;
    ``bounded``: every image tiled through a bounded set of compiled shapes).

    A map of the wrong shape or with a non-finite value raises ValueError (``infer.detect.check_map``)."""
    from mantra_jax.infer.detect import check_map
    from mantra_jax.infer.tiled import predict_auto

    def predict(image: Any) -> tuple[Any, bool]:
        prob, tiled = predict_auto(model, variables, image, tile=tile, auto_tile_pixels=auto_tile_pixels,
                                   bounded=bounded)
        return check_map(prob, image.shape[:2]), tiled  # a non-finite map fails the image in every command

    return predict


def _add_inference_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", "-c", help="Orbax checkpoint directory, official-layout .h5 or .msgpack")
    p.add_argument("--tile", type=_positive_int, default=None,
                   help="always use exact tiled inference with this core tile size (pixels)")
    p.add_argument("--auto-tile-pixels", type=_positive_int, default=DEFAULT_AUTO_TILE_PIXELS,
                   help="tile automatically (512 px tiles) above this many pixels (default %(default)s; whole-image "
                        "ptrain4 inference needs about 3.6 GiB of XLA buffers per megapixel on CPU)")
    p.add_argument("--max-pixels", type=_positive_int, default=None,
                   help="refuse images and masks with more pixels than this, from their header (default: "
                        "mantra_jax.io.images' limit, 2^27)")
    p.add_argument("--max-bytes", type=_positive_int, default=None,
                   help="refuse image and mask files larger than this many bytes before reading (default 1 GiB)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: only on a terminal)")
    p.add_argument("--bounded-shapes", action=argparse.BooleanOptionalAction, default=None,
                   help="mantra eval: tile every image (exactly) through a bounded set of region shapes, so a "
                        "benchmark with many image sizes compiles a few programs, not one per size (costs some "
                        "overlap; default on for eval; --no-bounded-shapes compiles each image size whole)")
    p.add_argument("--compile-cache", metavar="DIR|off", default=None,
                   help="JAX persistent compilation cache folder, or 'off' (default: $MANTRA_COMPILE_CACHE, else "
                        "~/.cache/mantra_jax/xla)")


def enable_compile_cache(option: str | None) -> str | None:
    """Turns JAX's persistent compilation cache on (``mantra_jax.compile_cache``); returns the folder or None.
    A folder that cannot be used is a one-line warning, not an error (the run only compiles more)."""
    from mantra_jax import compile_cache

    folder = compile_cache.resolve(option)
    try:
        used = compile_cache.enable(folder)
    except OSError as e:
        print(f"mantra: warning: compile cache off ({folder}: {e.strerror or e})", file=sys.stderr)
        return None
    return None if used is None else str(used)


def compile_report(before: tuple[int, float], run_seconds: float) -> dict[str, Any]:
    """``compilations``, ``compile_seconds`` and ``compute_seconds`` (the rest of ``run_seconds``) since
    ``before = (STATS.count, STATS.seconds)`` (``mantra_jax.compile_cache.STATS``)."""
    from mantra_jax.compile_cache import STATS

    seconds = STATS.seconds - before[1]
    return {"compilations": STATS.count - before[0], "compile_seconds": round(seconds, 2),
            "compute_seconds": round(run_seconds - seconds, 2)}


def _add_pairs_options(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", help="CSV with image,mask (or tampered,original,mask) columns")
    src.add_argument("--tp-gt", help="folder with Tp/ (tampered), Gt/ (masks) and optional Au/ (authentic)")
    src.add_argument("--json", dest="json_list", help="IMDL-BenCo JSON list [[image, mask or 'Negative'], ...]")
    src.add_argument("--benchmark", type=_benchmark_name, metavar="NAME",
                     help="the test split of a prepared benchmark (coverage, casia_v1, casia_v2, columbia, nist16; "
                          "mantra_jax.datasets.benchmarks) in --data-dir")
    p.add_argument("--data-dir", help="with --benchmark: the folder of the prepared benchmarks (prepared there on "
                                      "first use from --manual-dir)")
    p.add_argument("--manual-dir", help="with --benchmark: the benchmark's own files, in its published layout; "
                                        "read only when it is not prepared in --data-dir yet")
    p.add_argument("--skip-mismatched", action="store_true",
                   help="skip images whose mask has another size (default: resize the mask, nearest neighbour)")
    p.add_argument("--mask-rule", choices=("bright", "dark", "green"), default=None,
                   help="forged = gray > 127 (bright, the default), <= 127 (dark, NIST) or green > red (Columbia); "
                        "a --benchmark's masks carry their layout's rule")
    p.add_argument("--limit", type=_positive_int, default=None, help="use only the first N pairs")


def _benchmark_name(text: str) -> str:
    try:
        from mantra_jax.datasets.benchmarks import BUILDERS  # tensorflow-datasets: imported only when asked for
    except ImportError as e:
        raise argparse.ArgumentTypeError(f"--benchmark needs tensorflow-datasets ({e}); install the project's "
                                         "'data' extra: pip install -e '.[data]'") from None

    if text not in BUILDERS:
        raise argparse.ArgumentTypeError(f"unknown benchmark {text!r}; choose one of {', '.join(BUILDERS)}")
    return text


def _read_pairs(args: argparse.Namespace):
    from mantra_jax.eval import pairs as pairs_mod

    if not args.benchmark and (args.data_dir or args.manual_dir):
        raise CliError("--data-dir and --manual-dir go with --benchmark NAME")
    if args.benchmark:
        from mantra_jax.datasets.benchmarks import prepared_pairs

        if not args.data_dir:
            raise CliError("--benchmark needs --data-dir D (the folder of the prepared benchmarks)")
        if args.mask_rule is not None:
            raise CliError(f"--mask-rule does not apply to --benchmark: {args.benchmark}'s masks were binarised "
                           "with its layout's rule when it was prepared")
        args.mask_rule = "layout"

        def preparing() -> None:
            import tensorflow_datasets as tfds

            tfds.display_progress_bar(bool(args.progress) if args.progress is not None else sys.stderr.isatty())
            print(f"mantra {args.command}: preparing {args.benchmark} from {args.manual_dir} into {args.data_dir} "
                  "(once; later runs read it from there)", file=sys.stderr)

        pairs = prepared_pairs(args.benchmark, args.data_dir, args.manual_dir, on_prepare=preparing)
        source = f"{args.benchmark} (test split in {args.data_dir})"
    elif args.pairs:
        pairs, source = pairs_mod.read_pairs_csv(args.pairs), args.pairs
    elif args.tp_gt:
        pairs, source = pairs_mod.pairs_from_folders(args.tp_gt), args.tp_gt
    else:
        pairs, source = pairs_mod.read_pairs_json(args.json_list), args.json_list
    if args.mask_rule is None:
        args.mask_rule = "bright"
    if args.limit is not None:
        pairs = pairs[:args.limit]
    if not pairs:
        raise CliError(f"{source} lists no images")
    return pairs, source


def _progress_bar(total: int, desc: str, show: bool | None = None):
    """tqdm on stderr; ``show`` None: only on a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=None if show is None else not show,
                dynamic_ncols=True, mininterval=1.0)


# ---- detect --------------------------------------------------------------------------------------------

DETECT_SUMMARY = ("summary.csv", "summary.json")
DETECT_COLUMNS = ("image", "stem", "status", "error", "height", "width", "roi", "score_mean", "score_max",
                  "score_p99", "tiled", "seconds", "npy_file", "heatmap_file", "overlay_file")


def _write_detect_summary(out, args: argparse.Namespace, cfg: dict[str, Any], paths: Sequence[pathlib.Path],
                          problems: Sequence[str], records: list[dict[str, Any]], interrupted: bool) -> None:
    from mantra_jax.eval.runner import json_safe, rows_csv
    from mantra_jax.io.atomic import write_text_atomic

    csv_path, json_path = out.claim(*DETECT_SUMMARY)
    write_text_atomic(csv_path, rows_csv(records, DETECT_COLUMNS))
    done = {r["image"] for r in records}
    summary = {"checkpoint": str(args.checkpoint), "config": cfg, "n_images": len(paths),
               "n_ok": sum(r["status"] == "ok" for r in records),
               "n_failed": sum(r["status"] == "error" for r in records) + len(problems),
               "complete": not interrupted, "not_processed": [str(p) for p in paths if str(p) not in done],
               "input_problems": list(problems), "images": records}
    write_text_atomic(json_path, json.dumps(json_safe(summary), indent=2) + "\n")


def cmd_detect(args: argparse.Namespace) -> int:
    _require_checkpoint(args)
    from mantra_jax.infer.detect import collect_inputs, detect_file, output_names, parse_roi, unique_stems
    from mantra_jax.io.outputs import OutputDir, is_output_of, read_manifest

    roi = None
    if args.roi:
        try:
            roi = parse_roi(args.roi)
        except ValueError as e:
            raise CliError(str(e)) from None
    out_dir = pathlib.Path(args.out)
    earlier = read_manifest(out_dir) if out_dir.is_dir() else set()
    ours: list[pathlib.Path] = []  # files earlier runs wrote into --out: never read as inputs
    paths, problems = collect_inputs(args.paths, recursive=args.recursive,
                                     exclude=lambda p: is_output_of(out_dir, earlier, p) and not ours.append(p))
    for problem in problems:
        print(f"mantra detect: skipped {problem}", file=sys.stderr)
    if ours:
        print(f"mantra detect: left out {len(ours)} file(s) that mantra wrote into {out_dir} (a run's outputs are "
              "never read as inputs)", file=sys.stderr)
    if not paths:
        raise CliError("no input images found")
    stems = unique_stems(paths)
    with OutputDir.open(out_dir, "detect") as out:  # every output location checked before the first image
        out.check_free([*DETECT_SUMMARY, *(n for stem in stems for n in output_names(stem).values())])
        model, variables, cfg = load_detector(args.checkpoint)
        predict = make_predictor(model, variables, args.tile, args.auto_tile_pixels)
        records: list[dict[str, Any]] = []
        bar = _progress_bar(len(paths), "detect", args.progress)
        try:
            for path, stem in zip(paths, stems):
                t0 = time.perf_counter()
                try:
                    records.append(detect_file(path, stem, out_dir, predict, roi=roi, max_pixels=args.max_pixels,
                                               max_bytes=args.max_bytes, claim=out.claim))
                except ValueError as e:  # ImageReadError, a bad ROI, a non-finite map...
                    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                    msg = msg if str(path) in msg else f"{path}: {msg}"
                    bar.write(f"mantra detect: skipped {msg}", file=sys.stderr)
                    records.append({"image": str(path), "stem": stem, "status": "error", "error": msg,
                                    "seconds": round(time.perf_counter() - t0, 3)})
                bar.update(1)
        except KeyboardInterrupt:
            bar.close()
            _write_detect_summary(out, args, cfg, paths, problems, records, interrupted=True)
            print(f"mantra detect: interrupted after {len(records)} of {len(paths)} image(s); their outputs and "
                  f"the summary are in {out_dir}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except OSError as e:  # an output could not be written (a full disk): keep what is done, say what
            bar.close()
            try:
                _write_detect_summary(out, args, cfg, paths, problems, records, interrupted=True)
                kept = f"the summary of the {len(records)} image(s) before it is in {out_dir}"
            except OSError:
                kept = "no summary could be written"
            raise CliError(f"{e.strerror or e}; stopped after {len(records)} of {len(paths)} image(s), their "
                           f"outputs kept; {kept}") from None
        bar.close()
        _write_detect_summary(out, args, cfg, paths, problems, records, interrupted=False)
    ok = sum(r["status"] == "ok" for r in records)
    failed = len(records) - ok + len(problems)
    print(f"mantra detect: {ok} image(s) processed, {failed} failed; results in {out_dir}", file=sys.stderr)
    return EXIT_INPUTS_FAILED if failed else EXIT_OK


# ---- eval ----------------------------------------------------------------------------------------------

EVAL_OUTPUTS = ("metrics.json", "per_image.csv", "metrics.md")
EVAL_PROGRESS = "progress.jsonl"


def weights_digest(variables: Any) -> str:
    """sha256 of the variables' leaves (tree order, float32 bytes): the identity of the weights evaluated."""
    import hashlib

    import jax
    import numpy as np

    h = hashlib.sha256()
    for leaf in jax.tree.leaves(variables):
        h.update(np.ascontiguousarray(np.asarray(leaf, np.float32)).tobytes())
    return h.hexdigest()


def _eval_settings(args: argparse.Namespace, cfg: dict[str, Any], variables: Any) -> dict[str, Any]:
    """What a resumed evaluation must share with the interrupted one (tiling is exact, so it may differ)."""
    return {"config": cfg, "weights_sha256": weights_digest(variables), "mask_rule": args.mask_rule,
            "mismatched_masks": "skip" if args.skip_mismatched else "resize", "max_pixels": args.max_pixels,
            "max_bytes": args.max_bytes}


def cmd_eval(args: argparse.Namespace) -> int:
    _require_checkpoint(args)
    from mantra_jax.eval.runner import (append_record, is_finished, pair_key, read_progress, repair_progress,
                                       run_from_records, run_pairs, start_progress, write_results)
    from mantra_jax.io.outputs import OutputDir

    from mantra_jax.compile_cache import STATS

    pairs, source = _read_pairs(args)
    out_dir = pathlib.Path(args.out)
    with OutputDir.open(out_dir, "eval") as out:  # every output location checked before the first image
        out.check_free([*EVAL_OUTPUTS, EVAL_PROGRESS])
        model, variables, cfg = load_detector(args.checkpoint)
        settings = _eval_settings(args, cfg, variables)
        progress_path = out_dir / EVAL_PROGRESS
        note = repair_progress(progress_path) if progress_path.exists() else None
        if note:
            print(f"mantra eval: {note}", file=sys.stderr)
        try:
            done = read_progress(progress_path, settings) if progress_path.exists() else {}
        except ValueError as e:
            raise CliError(f"--out {out_dir}: {e}; use another --out folder for these settings") from None
        out.claim(EVAL_PROGRESS, *EVAL_OUTPUTS)
        if not done:
            start_progress(progress_path, settings)
        finished = {k: r for k, r in done.items() if is_finished(r)}  # + each new record, as it comes
        n_reused = sum(1 for p in pairs if pair_key(p) in finished)
        if n_reused:
            print(f"mantra eval: resuming in {out_dir}: {n_reused} of {len(pairs)} image(s) already done",
                  file=sys.stderr)
        bounded = args.bounded_shapes is not False  # on by default for eval
        predict = make_predictor(model, variables, args.tile, args.auto_tile_pixels, bounded)
        compiled_before = (STATS.count, STATS.seconds)
        bar = _progress_bar(len(pairs), "eval", args.progress)
        meta = {"checkpoint": str(args.checkpoint), "config": cfg, "pairs": str(source), "n_pairs": len(pairs),
                "mask_rule": args.mask_rule,
                "mismatched_masks": "skipped" if args.skip_mismatched else "resized (nearest neighbour)",
                "tile": args.tile, "auto_tile_pixels": args.auto_tile_pixels,
                "bounded_shapes": bounded, "compile_cache": args.compile_cache_dir,
                "weights_sha256": settings["weights_sha256"]}
        name = args.benchmark or pathlib.Path(str(source)).stem or "benchmark"
        t0 = time.perf_counter()
        with progress_path.open("a", encoding="utf-8") as log:
            def on_record(record: dict[str, Any]) -> None:  # each image's result on disk as soon as computed
                append_record(log, record)
                finished[record["key"]] = record

            try:
                run = run_pairs(pairs, predict, rule=args.mask_rule,
                                on_mismatch="skip" if args.skip_mismatched else "resize",
                                max_pixels=args.max_pixels, max_bytes=args.max_bytes,
                                progress=lambda *a: bar.update(1),
                                done=done, on_record=on_record)
            except KeyboardInterrupt:
                bar.close()
                records = [finished.get(pair_key(p)) for p in pairs]
                run = run_from_records(records, time.perf_counter() - t0)
                n_done = sum(r is not None for r in records)
                write_results(out_dir, run, {**meta, "complete": False, "n_done": n_done}, name=name)
                print(f"mantra eval: interrupted after {n_done} of {len(pairs)} image(s); partial results in "
                      f"{out_dir}; run the same command again to resume", file=sys.stderr)
                return EXIT_INTERRUPTED
        bar.close()
        meta.update(compile_report(compiled_before, run.seconds))
        write_results(out_dir, run, {**meta, "complete": True, "n_done": len(pairs), "n_reused": n_reused},
                      name=name)
    for f in run.failed:
        reason = f["reason"] if f["reason"].startswith(f["image"]) else f"{f['image']}: {f['reason']}"
        print(f"mantra eval: failed {reason}", file=sys.stderr)
    if run.n_resized_masks:
        print(f"mantra eval: {run.n_resized_masks} mask(s) had another size than their image and were resized "
              "(nearest neighbour); --skip-mismatched leaves such images out", file=sys.stderr)
    m = run.summary
    print(f"mantra eval: {m['n_images']} image(s), pixel AUC {m['pixel_auc']}, image AUC {m['image_auc']}; "
          f"{len(run.failed)} failed, {len(run.skipped)} skipped; {meta['compilations']} compilation(s) in "
          f"{meta['compile_seconds']} s, compute {meta['compute_seconds']} s; results in {out_dir}", file=sys.stderr)
    return EXIT_INPUTS_FAILED if run.failed else EXIT_OK


# ---- robustness ----------------------------------------------------------------------------------------

ROBUSTNESS_OUTPUTS = ("robustness.csv", "robustness.json", "robustness.png")


def cmd_robustness(args: argparse.Namespace) -> int:
    _require_checkpoint(args)
    from mantra_jax.eval.robustness import METRICS, parse_attacks, plot_robustness, run_robustness
    from mantra_jax.eval.runner import json_safe, rows_csv
    from mantra_jax.io.atomic import write_text_atomic
    from mantra_jax.io.outputs import OutputDir

    levels: dict[str, list[float]] = {}
    for item in args.levels or []:
        name, _, values = item.partition("=")
        try:
            levels[name.strip()] = [float(v) for v in values.split(",")]
        except ValueError:
            raise CliError(f"--levels expects NAME=v1,v2,..., got {item!r}") from None
    try:
        attacks = parse_attacks(args.attacks, levels)
        unused = sorted(set(levels) - set(attacks))
        if unused:
            raise ValueError(f"--levels given for attack(s) {unused} that are not run")
    except ValueError as e:
        raise CliError(str(e)) from None
    pairs, source = _read_pairs(args)
    out_dir = pathlib.Path(args.out)
    with OutputDir.open(out_dir, "robustness") as out:  # checked before the first image
        out.check_free(ROBUSTNESS_OUTPUTS)
        model, variables, cfg = load_detector(args.checkpoint)
        predict = make_predictor(model, variables, args.tile, args.auto_tile_pixels)
        n_runs = 1 + sum(len(v) for v in attacks.values())
        bar = _progress_bar(n_runs, "robustness", args.progress)

        started = [0]

        def progress(label: str) -> None:  # called as each run starts
            bar.update(1 if started[0] else 0)
            started[0] += 1
            bar.set_postfix_str(label)

        rows = run_robustness(pairs, predict, attacks, seed=args.seed, progress=progress, rule=args.mask_rule,
                              on_mismatch="skip" if args.skip_mismatched else "resize", max_pixels=args.max_pixels,
                              max_bytes=args.max_bytes)
        bar.update(1)
        bar.close()
        csv_path, json_path, png_path = out.claim(*ROBUSTNESS_OUTPUTS)
        columns = ("attack", "parameter", "level", "n_images", "n_failed", "seconds", *METRICS)
        write_text_atomic(csv_path, rows_csv(rows, columns))
        doc = {"checkpoint": str(args.checkpoint), "config": cfg, "pairs": str(source), "seed": args.seed,
               "attacks": {k: list(v) for k, v in attacks.items()}, "rows": rows}
        write_text_atomic(json_path, json.dumps(json_safe(doc), indent=2) + "\n")
        plot_robustness(rows, png_path)
    failed = sum(r["n_failed"] for r in rows)
    print(f"mantra robustness: {n_runs} run(s) over {len(pairs)} pair(s); results in {out_dir}", file=sys.stderr)
    return EXIT_INPUTS_FAILED if failed else EXIT_OK


# ---- info / convert-keras ------------------------------------------------------------------------------

def model_info(model: Any, variables: Any, cfg: dict[str, Any], size: int = 256) -> dict[str, Any]:
    """Config, parameter counts, FLOPs per megapixel (XLA cost analysis at size x size) and the halo."""
    import dataclasses

    import jax
    import jax.numpy as jnp

    from mantra_jax.io.checkpoints import parameter_count

    info: dict[str, Any] = {"config": cfg, "parameters": parameter_count(variables)}
    # the network's nominal FLOPs: direct convolutions (CPU inference runs fewer, through Winograd; ops.conv)
    nominal = model.clone(compute=dataclasses.replace(model.compute, conv_algorithm="direct"))
    if cfg["kind"] == "mantranet":
        from mantra_jax.infer.tiled import receptive_halo
        from mantra_jax.infer.whole import compiled_cost

        cost = compiled_cost(nominal, variables, size, size)
        info["receptive_halo"] = receptive_halo(model).total
    else:
        from mantra_jax.perf import cost_dict

        x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
        cost = cost_dict(jax.jit(lambda v, a: nominal.apply(v, a)["logits"]).lower(variables, x).compile())
    flops = float(cost.get("flops", float("nan")))
    info["flops_per_megapixel"] = flops / (size * size) * 1e6
    info["flops_measured_at"] = [size, size]
    return info


def cmd_info(args: argparse.Namespace) -> int:
    from mantra_jax.io.checkpoints import load_model

    model, variables, cfg = load_model(args.checkpoint)
    info = {"checkpoint": str(args.checkpoint), **model_info(model, variables, cfg, args.size)}
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    c = info["config"]
    print(f"checkpoint:          {args.checkpoint}")
    print(f"kind:                {c['kind']}")
    print(f"variant:             {c['variant']}")
    if c["kind"] == "mantranet":
        print(f"windows:             {', '.join(map(str, c['windows']))}")
        print(f"anomaly feature:     {c['anomaly_feature']}")
        print(f"receptive halo:      {info['receptive_halo']} px (tiled inference)")
    else:
        print(f"classes:             {c['num_classes']}")
    p = info["parameters"]
    print(f"parameters:          {p.get('params', 0):,} trainable + {p.get('batch_stats', 0):,} statistics")
    print(f"FLOPs per megapixel: {info['flops_per_megapixel'] / 1e12:.2f} TFLOP (XLA cost analysis at "
          f"{args.size}x{args.size}, direct convolutions)")
    return EXIT_OK


def cmd_convert_keras(args: argparse.Namespace) -> int:
    from mantra_jax.io.checkpoints import _is_hdf5, load_model, save_weights_file

    src, dst = pathlib.Path(args.input), pathlib.Path(args.output)
    if not src.is_file():
        raise CliError(f"{src} is not a file")
    if not _is_hdf5(src):
        raise CliError(f"{src} is not an HDF5 (.h5) file")
    if dst.is_dir():
        raise CliError(f"{dst} is a folder; convert-keras writes one .msgpack file")
    if os.path.lexists(dst):
        raise CliError(f"{dst} exists; convert-keras never overwrites a file: remove it or choose another name")
    model, variables, cfg = load_model(src, variant=args.variant, windows=args.windows)
    save_weights_file(dst, cfg, variables)
    print(f"mantra convert-keras: wrote {dst} ({cfg['variant']}, windows {cfg['windows']})", file=sys.stderr)
    return EXIT_OK


# ---- parser and entry point ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mantra", description="ManTra-Net image-forgery localisation (JAX).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("detect", help="forgery maps for image files, folders or glob patterns")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders or glob patterns")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--roi", help="analyse only this region: x,y,w,h in pixels")
    p.add_argument("--recursive", "-r", action="store_true", help="also look into sub-folders")
    _add_inference_options(p)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("eval", help="pixel and image metrics on a benchmark")
    _add_pairs_options(p)
    p.add_argument("--out", "-o", required=True, help="output folder (metrics.json, per_image.csv, metrics.md)")
    _add_inference_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("robustness", help="metrics under resizing, JPEG, edge smoothing, blur and noise")
    _add_pairs_options(p)
    p.add_argument("--out", "-o", required=True, help="output folder (robustness.csv/.json/.png)")
    p.add_argument("--attacks", default="all",
                   help="comma-separated: resize, jpeg, edge_blur, gaussian_blur, gaussian_noise, or all")
    p.add_argument("--levels", action="append", metavar="NAME=V1,V2",
                   help="override an attack's ladder, e.g. jpeg=90,70,50 (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise attack")
    _add_inference_options(p)
    p.set_defaults(func=cmd_robustness)

    p = sub.add_parser("info", help="variant, parameters and FLOPs of a checkpoint")
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("--size", type=_positive_int, default=256, help="side of the square used to count FLOPs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert-keras", help="official-layout Keras .h5 -> single-file .msgpack")
    p.add_argument("input", metavar="IN.h5")
    p.add_argument("output", metavar="OUT.msgpack")
    p.add_argument("--variant", default=None, help="release variant (default: from the first layer)")
    p.add_argument("--windows", type=_windows, default=None, help="window sizes, e.g. 7,15,31")
    p.set_defaults(func=cmd_convert_keras)
    return parser


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


STDOUT_COMMANDS = ("info",)  # the commands whose requested output is standard output


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mantra`` console script; returns the exit status.

    SIGTERM is handled like SIGINT (Ctrl-C): the command writes what it has (detect: the summary; eval:
    partial metrics, resumable) and exits with status 130.
    """
    import signal
    import threading

    from mantra_jax.io.streams import reopen_closed_streams

    closed = reopen_closed_streams()  # a closed stderr: errors are lost but the exit status still tells
    parser = build_parser()
    args = parser.parse_args(argv)
    if "stdout" in closed and args.command in STDOUT_COMMANDS:
        print(f"mantra {args.command}: error: standard output is closed: nowhere to write the requested "
              f"output", file=sys.stderr)
        return EXIT_USAGE
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        if hasattr(args, "compile_cache"):
            args.compile_cache_dir = enable_compile_cache(args.compile_cache)
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"mantra {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CliError, ValueError, OSError) as e:  # CheckpointError, PairsError, ImageReadError are ValueErrors
        if os.environ.get("MANTRA_DEBUG"):
            raise
        text = str(e).strip().splitlines()
        print(f"mantra {args.command}: error: {text[0] if text else type(e).__name__}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - never a traceback for the user
        if os.environ.get("MANTRA_DEBUG"):
            raise
        text = str(e).strip().splitlines()
        print(f"mantra {args.command}: internal error: {type(e).__name__}: {text[0] if text else ''} "
              "(set MANTRA_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
