"""``mantra eval``: pixel and image metrics on a benchmark, resumable after an interruption; split over the
processes of a ``jax.distributed`` run (``python -m mantra_jax.distributed.launch -n N -- mantra eval ...``)."""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import sys
import time
from typing import Any

from mantra_jax.cli.common import EXIT_OK, EXIT_INPUTS_FAILED, EXIT_INTERRUPTED, CliError, _require_checkpoint, load_detector, predictor_for, compile_report, compile_start, _read_pairs, _progress_bar, processes
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


def process_log(index: int) -> str:
    """The progress log process ``index`` appends to (process 0, or a single process: ``progress.jsonl``)."""
    return EVAL_PROGRESS if index == 0 else f"progress.p{index}.jsonl"


def _our_logs(out_dir: pathlib.Path, count: int) -> list[pathlib.Path]:
    """The progress logs of this run's processes and those an earlier run on more processes left (listed
    in the folder's manifest: never a user's file), that exist."""
    from mantra_jax.io.outputs import read_manifest

    listed = read_manifest(out_dir)
    names = {process_log(i) for i in range(count)} | {n for n in listed if n.startswith("progress.p")
                                                       and n.endswith(".jsonl")}
    return [out_dir / n for n in sorted(names) if (out_dir / n).exists() and (n == EVAL_PROGRESS or n in listed)]


def _done_records(out_dir: pathlib.Path, count: int, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every record of the folder's progress logs by pair key (CliError when one holds other settings)."""
    from mantra_jax.eval.runner import read_progress

    done: dict[str, dict[str, Any]] = {}
    for path in _our_logs(out_dir, count):
        try:
            for key, record in read_progress(path, settings).items():
                if key not in done or record["status"] != "failed":
                    done[key] = record
        except ValueError as e:
            raise CliError(f"--out {out_dir}: {e}; use another --out folder for these settings") from None
    return done


def cmd_eval(args: argparse.Namespace) -> int:
    """See the module docstring. Several processes (a launcher or ``jax.distributed`` environment): process
    k scores the images k, k + n, ... and appends to its own log; process 0 alone checks and claims the
    folder, then merges every log in the images' order into the results, so they equal one process's."""
    _require_checkpoint(args)
    from mantra_jax.distributed.runtime import barrier, primary_first
    from mantra_jax.eval.runner import (append_record, is_finished, pair_key, repair_progress, run_from_records,
                                        run_pairs, start_progress, write_results)
    from mantra_jax.eval.saved_maps import map_arrays, map_name, save_map
    from mantra_jax.io.outputs import OutputDir

    index, count = processes()
    primary = index == 0
    pairs, source = primary_first("mantra eval: pairs", lambda: _read_pairs(args))  # a benchmark prepared once
    out_dir = pathlib.Path(args.out)
    logs = [process_log(i) for i in range(count)]
    maps = [map_name(p.key) for p in pairs]
    # every output location checked before the first image (by process 0: the folder is locked for the run)
    with (OutputDir.open(out_dir, "eval") if primary else contextlib.nullcontext()) as out:
        if primary:
            out.check_free([*EVAL_OUTPUTS, *logs, *maps])
            check_report_free(out, args)
        model, variables, cfg = load_detector(args.checkpoint, rest=args.complete_from)
        settings = _eval_settings(args, cfg, variables)
        if primary:
            for path in _our_logs(out_dir, count):
                note = repair_progress(path)
                if note:
                    print(f"mantra eval: {note}", file=sys.stderr)
            done = _done_records(out_dir, count, settings)
            out.claim(*logs, *EVAL_OUTPUTS, *maps)  # every process's maps listed before any is written
            for name in logs:
                if not (out_dir / name).exists():
                    start_progress(out_dir / name, settings)
        barrier("mantra eval: logs ready")
        if not primary:
            done = _done_records(out_dir, count, settings)
        finished = {k: r for k, r in done.items() if is_finished(r)}  # + each new record, as it comes
        n_reused = sum(1 for p in pairs if pair_key(p) in finished)
        if n_reused and primary:
            print(f"mantra eval: resuming in {out_dir}: {n_reused} of {len(pairs)} image(s) already done",
                  file=sys.stderr)
        mine = pairs[index::count]
        bounded = args.bounded_shapes is not False  # on by default for eval
        predict = predictor_for(args, model, variables, cfg, bounded)
        compiled_before = compile_start()
        bar = _progress_bar(len(mine), "eval" if count == 1 else f"eval (process {index})", args.progress)
        meta = {"checkpoint": str(args.checkpoint), "weights": args.weights, "config": cfg, "pairs": str(source), "n_pairs": len(pairs),
                "mask_rule": args.mask_rule,
                "mismatched_masks": "skipped" if args.skip_mismatched else "resized (nearest neighbour)",
                "tile": args.tile, "auto_tile_pixels": args.auto_tile_pixels,
                "bounded_shapes": bounded, "compile_cache": args.compile_cache_dir,
                "weights_sha256": settings["weights_sha256"]}
        name = args.benchmark or pathlib.Path(str(source)).stem or "benchmark"
        t0 = time.perf_counter()
        with (out_dir / logs[index]).open("a", encoding="utf-8") as log:
            def on_record(record: dict[str, Any]) -> None:  # each image's result on disk as soon as computed
                append_record(log, record)
                finished[record["key"]] = record

            def on_map(pair: Any, image: Any, prob: Any, mask: Any) -> dict[str, str]:  # kept for the report
                name = map_name(pair.key)
                save_map(out_dir / name, map_arrays(image, prob, mask))
                return {"map_file": name}

            try:
                run = run_pairs(mine, predict, rule=args.mask_rule,
                                on_mismatch="skip" if args.skip_mismatched else "resize",
                                max_pixels=args.max_pixels, max_bytes=args.max_bytes,
                                progress=lambda *a: bar.update(1),
                                done=done, on_record=on_record, on_map=on_map)
            except KeyboardInterrupt:
                bar.close()
                if not primary:
                    return EXIT_INTERRUPTED
                if count > 1:  # the other processes' records too, as far as they got
                    finished.update({k: r for k, r in _done_records(out_dir, count, settings).items()
                                     if is_finished(r)})
                records = [finished.get(pair_key(p)) for p in pairs]
                run = run_from_records(records, time.perf_counter() - t0)
                n_done = sum(r is not None for r in records)
                write_results(out_dir, run, {**meta, "complete": False, "n_done": n_done}, name=name)
                write_run_report(out, args)
                print(f"mantra eval: interrupted after {n_done} of {len(pairs)} image(s); partial results in "
                      f"{out_dir}; run the same command again to resume", file=sys.stderr)
                return EXIT_INTERRUPTED
        bar.close()
        barrier("mantra eval: images done")
        if not primary:  # process 0 reports every image, theirs included
            return EXIT_INPUTS_FAILED if run.failed else EXIT_OK
        if count > 1:
            merged = _done_records(out_dir, count, settings)
            run = run_from_records([merged.get(pair_key(p)) for p in pairs], time.perf_counter() - t0)
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
          f"{len(run.failed)} failed, {len(run.skipped)} skipped; start {meta['start_seconds']} s, "
          f"{meta['compilations']} compilation(s) in {meta['compile_seconds']} s, compute {meta['compute_seconds']} s; results in {out_dir}", file=sys.stderr)
    return EXIT_INPUTS_FAILED if run.failed else EXIT_OK
