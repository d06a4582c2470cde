"""``mantra robustness``: metrics under resizing, JPEG, edge smoothing, blur and noise."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from mantra_jax.cli.common import EXIT_OK, EXIT_INPUTS_FAILED, CliError, _require_checkpoint, load_detector, predictor_for, _read_pairs, _progress_bar
from mantra_jax.cli.report import check_report_free, write_run_report


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
        check_report_free(out, args)
        model, variables, cfg = load_detector(args.checkpoint, rest=args.complete_from)
        predict = predictor_for(args, model, variables, cfg)
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
        doc = {"checkpoint": str(args.checkpoint), "weights": args.weights, "config": cfg, "pairs": str(source), "seed": args.seed,
               "attacks": {k: list(v) for k, v in attacks.items()}, "rows": rows}
        write_text_atomic(json_path, json.dumps(json_safe(doc), indent=2) + "\n")
        plot_robustness(rows, png_path)
        write_run_report(out, args)
    failed = sum(r["n_failed"] for r in rows)
    print(f"mantra robustness: {n_runs} run(s) over {len(pairs)} pair(s); results in {out_dir}", file=sys.stderr)
    return EXIT_INPUTS_FAILED if failed else EXIT_OK
