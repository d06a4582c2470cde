"""``mantra eval``: pixel and image metrics on a benchmark, resumable after an interruption."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from typing import Any

from mantra_jax.cli.common import EXIT_OK, EXIT_INPUTS_FAILED, EXIT_INTERRUPTED, CliError, _require_checkpoint, load_detector, predictor_for, compile_report, compile_start, _read_pairs, _progress_bar
from mantra_jax.cli.report import check_report_free, write_run_report


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
                                       run_from_records,
                                       run_pairs, start_progress, write_results)
    from mantra_jax.eval.saved_maps import map_arrays, map_name, save_map
    from mantra_jax.io.outputs import OutputDir

    pairs, source = _read_pairs(args)
    out_dir = pathlib.Path(args.out)
    with OutputDir.open(out_dir, "eval") as out:  # every output location checked before the first image
        out.check_free([*EVAL_OUTPUTS, EVAL_PROGRESS, *(map_name(p.key) for p in pairs)])
        check_report_free(out, args)
        model, variables, cfg = load_detector(args.checkpoint, rest=args.complete_from)
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
        predict = predictor_for(args, model, variables, cfg, bounded)
        compiled_before = compile_start()
        bar = _progress_bar(len(pairs), "eval", args.progress)
        meta = {"checkpoint": str(args.checkpoint), "weights": args.weights, "config": cfg, "pairs": str(source), "n_pairs": len(pairs),
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

            def on_map(pair: Any, image: Any, prob: Any, mask: Any) -> dict[str, str]:  # kept for the report
                name = map_name(pair.key)
                save_map(out.claim(name)[0], map_arrays(image, prob, mask))
                return {"map_file": name}

            try:
                run = run_pairs(pairs, predict, rule=args.mask_rule,
                                on_mismatch="skip" if args.skip_mismatched else "resize",
                                max_pixels=args.max_pixels, max_bytes=args.max_bytes,
                                progress=lambda *a: bar.update(1),
                                done=done, on_record=on_record, on_map=on_map)
            except KeyboardInterrupt:
                bar.close()
                records = [finished.get(pair_key(p)) for p in pairs]
                run = run_from_records(records, time.perf_counter() - t0)
                n_done = sum(r is not None for r in records)
                write_results(out_dir, run, {**meta, "complete": False, "n_done": n_done}, name=name)
                write_run_report(out, args)
                print(f"mantra eval: interrupted after {n_done} of {len(pairs)} image(s); partial results in "
                      f"{out_dir}; run the same command again to resume", file=sys.stderr)
                return EXIT_INTERRUPTED
        bar.close()
        meta.update(compile_report(compiled_before, run.seconds))
        write_results(out_dir, run, {**meta, "complete": True, "n_done": len(pairs), "n_reused": n_reused},
                      name=name)
        write_run_report(out, args)
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
