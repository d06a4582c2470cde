"""``mantra report OUT_DIR``: the HTML report of a detect / eval / robustness output folder, and the
``--report/--no-report`` option the three commands share (on by default)."""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

from mantra_jax.cli.common import EXIT_OK, CliError


def add_report_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                   help="write OUT/report.html and its thumbnails under OUT/report/ at the end (default on)")


def check_report_free(out: Any, args: argparse.Namespace) -> None:
    """Before the first image: the report's files must be free (absent or mantra's); OutputError otherwise."""
    if getattr(args, "report", True):
        from mantra_jax.report import files_in_use

        out.check_free(files_in_use(out.path))


def write_run_report(out: Any, args: argparse.Namespace) -> None:
    """The report of the run just written into ``out`` (an OutputDir), unless ``--no-report``. A report that
    cannot be written is a one-line warning: the run's own results are already on disk."""
    if not getattr(args, "report", True):
        return
    from mantra_jax.report import write_report

    try:
        path = write_report(out.path, out.claim)
    except (OSError, ValueError) as e:  # ReportError, a malformed file of an older run
        print(f"mantra {args.command}: warning: no report written ({str(e).splitlines()[0] if str(e) else e})",
              file=sys.stderr)
        return
    print(f"mantra {args.command}: report in {path}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    from mantra_jax.io.outputs import OutputDir
    from mantra_jax.report import ReportError, files_in_use, run_kinds, write_report

    folder = pathlib.Path(args.out_dir)
    if not folder.is_dir():
        raise CliError(f"{folder} is not a folder" if folder.exists() else f"{folder}: no such folder")
    if not run_kinds(folder):
        raise CliError(f"{folder} holds no mantra run outputs (summary.json, metrics.json, progress.jsonl or "
                       "robustness.json)")
    with OutputDir.open(folder, "report", option="OUT_DIR") as out:
        out.check_free(files_in_use(folder))
        try:
            path = write_report(folder, out.claim)
        except ReportError as e:
            raise CliError(str(e)) from None
    print(f"mantra report: {path}", file=sys.stderr)
    return EXIT_OK
