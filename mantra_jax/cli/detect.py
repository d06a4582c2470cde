"""``mantra detect``: forgery maps, heatmaps and overlays for image files, folders or globs; split over the
processes of a ``jax.distributed`` run (``python -m mantra_jax.distributed.launch -n N -- mantra detect ...``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import sys
import time
from typing import Any, Sequence

from mantra_jax.cli.common import EXIT_OK, EXIT_INPUTS_FAILED, EXIT_INTERRUPTED, CliError, _require_checkpoint, load_detector, predictor_for, _progress_bar, compile_start, compile_report, processes
from mantra_jax.cli.report import check_report_free, write_run_report


DETECT_SUMMARY = ("summary.csv", "summary.json")


def process_records(index: int) -> str:
    """Where process ``index`` > 0 of a multi-process detect leaves its images' records for process 0."""
    return f"records.p{index}.json"


def _as_json(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` as they read back from JSON (every process's the same way, so the merged summary is one
    process's)."""
    from mantra_jax.eval.runner import json_safe

    return json.loads(json.dumps(json_safe(records)))


def _merged(out_dir: pathlib.Path, count: int, paths: Sequence[pathlib.Path],
            own: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Process 0's records and the other processes' (those whose file is there), in the inputs' order."""
    by_image = {r["image"]: r for r in _as_json(own)}
    for i in range(1, count):
        f = out_dir / process_records(i)
        if f.exists():
            by_image.update({r["image"]: r for r in json.loads(f.read_text())})
            f.unlink()
    return [by_image[str(p)] for p in paths if str(p) in by_image]


DETECT_COLUMNS = ("image", "stem", "status", "error", "height", "width", "roi", "score_mean", "score_max",
                  "score_p99", "tiled", "seconds", "npy_file", "heatmap_file", "overlay_file")


def _write_detect_summary(out, args: argparse.Namespace, cfg: dict[str, Any], paths: Sequence[pathlib.Path],
                          problems: Sequence[str], records: list[dict[str, Any]], run: dict[str, Any],
                          interrupted: bool) -> None:
    """``summary.csv`` and ``summary.json``; ``run``: the settings and ``compile_report`` (compilations, compile
    and compute seconds, persistent-cache hits and writes)."""
    from mantra_jax.eval.runner import json_safe, rows_csv
    from mantra_jax.io.atomic import write_text_atomic

    csv_path, json_path = out.claim(*DETECT_SUMMARY)
    write_text_atomic(csv_path, rows_csv(records, DETECT_COLUMNS))
    done = {r["image"] for r in records}
    summary = {"checkpoint": str(args.checkpoint), "weights": args.weights, "config": cfg, "n_images": len(paths),
               "n_ok": sum(r["status"] == "ok" for r in records),
               "n_failed": sum(r["status"] == "error" for r in records) + len(problems),
               "complete": not interrupted, "not_processed": [str(p) for p in paths if str(p) not in done],
               "input_problems": list(problems), "run": run, "images": records}
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
    # several processes: process k does the images k, k + n, ...; process 0 alone checks, locks and lists
    # every output first, then merges the others' records (records.pK.json) into one summary
    index, count = processes()
    primary = index == 0
    from mantra_jax.distributed.runtime import barrier
    from mantra_jax.io.atomic import write_text_atomic

    outputs = [n for stem in stems for n in output_names(stem).values()]
    parts = [process_records(i) for i in range(1, count)]
    with (OutputDir.open(out_dir, "detect") if primary else contextlib.nullcontext()) as out:
        if primary:  # every output location checked before the first image
            out.check_free([*DETECT_SUMMARY, *outputs, *parts])
            check_report_free(out, args)
            if count > 1:
                out.claim(*parts, *outputs)  # listed before any process writes one
        barrier("mantra detect: outputs checked")
        claim = out.claim if primary else (lambda *names: [out_dir / n for n in names])
        model, variables, cfg = load_detector(args.checkpoint, rest=args.complete_from)
        bounded = args.bounded_shapes is not False  # on by default, as for eval: a few programs for any sizes
        predict = predictor_for(args, model, variables, cfg, bounded)
        run = {"memory": args.memory, "tile": args.tile, "bounded_shapes": bounded,
               "compile_cache": args.compile_cache_dir}
        clock = compile_start()
        mine = list(zip(paths, stems))[index::count]

        def summary(interrupted: bool) -> dict[str, Any]:
            report = compile_report(clock)
            if not primary:  # process 0 writes the summary, theirs included
                write_text_atomic(out_dir / process_records(index), json.dumps(_as_json(records)) + "\n")
                return report
            every[:] = records if count == 1 else _merged(out_dir, count, paths, records)
            _write_detect_summary(out, args, cfg, paths, problems, every, {**run, **report}, interrupted)
            return report

        records: list[dict[str, Any]] = []  # this process's
        every: list[dict[str, Any]] = []  # all processes' (process 0), as summarised
        bar = _progress_bar(len(mine), "detect" if count == 1 else f"detect (process {index})", args.progress)
        try:
            for path, stem in mine:
                t0 = time.perf_counter()
                try:
                    records.append(detect_file(path, stem, out_dir, predict, roi=roi, max_pixels=args.max_pixels,
                                               max_bytes=args.max_bytes, claim=claim))
                except ValueError as e:  # ImageReadError, a bad ROI, a non-finite map...
                    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                    msg = msg if str(path) in msg else f"{path}: {msg}"
                    bar.write(f"mantra detect: skipped {msg}", file=sys.stderr)
                    records.append({"image": str(path), "stem": stem, "status": "error", "error": msg,
                                    "seconds": round(time.perf_counter() - t0, 3)})
                bar.update(1)
        except KeyboardInterrupt:
            bar.close()
            summary(interrupted=True)
            if primary:
                write_run_report(out, args)
                of = f"{len(mine)} image(s)" if count == 1 else f"this process's {len(mine)} image(s)"
                print(f"mantra detect: interrupted after {len(records)} of {of}; their outputs and the summary "
                      f"are in {out_dir}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except OSError as e:  # an output could not be written (a full disk): keep what is done, say what
            bar.close()
            try:
                summary(interrupted=True)
                kept = f"the summary of the {len(records)} image(s) before it is in {out_dir}"
            except OSError:
                kept = "no summary could be written"
            raise CliError(f"{e.strerror or e}; stopped after {len(records)} of {len(mine)} image(s), their "
                           f"outputs kept; {kept}") from None
        bar.close()
        if not primary:
            summary(interrupted=False)
            barrier("mantra detect: images done")
            failed = sum(r["status"] != "ok" for r in records)
            return EXIT_INPUTS_FAILED if failed or problems else EXIT_OK
        barrier("mantra detect: images done")
        c = summary(interrupted=False)
        write_run_report(out, args)
    ok = sum(r["status"] == "ok" for r in every)
    failed = len(every) - ok + len(problems)
    print(f"mantra detect: {ok} image(s) processed, {failed} failed; start {c['start_seconds']} s, "
          f"{c['compilations']} compilation(s) in {c['compile_seconds']} s, compute {c['compute_seconds']} s; "
          f"results in {out_dir}", file=sys.stderr)
    return EXIT_INPUTS_FAILED if failed else EXIT_OK
