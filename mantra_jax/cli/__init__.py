"""The ``mantra`` command: detect, eval, robustness, info, convert-keras.

    mantra detect PATH... --checkpoint CKPT --out DIR [--roi x,y,w,h] [--tile N] [--max-pixels N]
    mantra eval --checkpoint CKPT (--pairs PAIRS.csv | --tp-gt DIR | --json LIST.json) --out DIR
    mantra eval --checkpoint CKPT --benchmark NAME --data-dir D [--manual-dir M] --out DIR
    mantra robustness --checkpoint CKPT (--pairs ... | --tp-gt ... | --json ...) --out DIR [--attacks ...]
    mantra info CKPT
    mantra convert-keras IN.h5 OUT.msgpack
    mantra weights list | fetch NAME [--accept-licence] | add NAME FILE
    mantra report OUT_DIR

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
import os
import sys
from typing import Any, Sequence

# The exit statuses of the module docstring, for the command's callers (``cli.main(...) == cli.EXIT_OK``).
from mantra_jax.cli.common import (EXIT_INPUTS_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK,  # noqa: F401
                                   EXIT_USAGE)
from mantra_jax.cli.common import (CliError, _add_inference_options, _add_pairs_options, _Parser, _positive_int,
                                   _windows, enable_compile_cache)
from mantra_jax.cli.convert_keras import cmd_convert_keras
from mantra_jax.cli.detect import cmd_detect
from mantra_jax.cli.eval import cmd_eval
from mantra_jax.cli.info import FLOPS_SIZE, cmd_info
from mantra_jax.cli.report import add_report_option, cmd_report
from mantra_jax.cli.robustness import cmd_robustness
from mantra_jax.cli.weights import add_weights_parser


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
    add_report_option(p)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("eval", help="pixel and image metrics on a benchmark")
    _add_pairs_options(p)
    p.add_argument("--out", "-o", required=True, help="output folder (metrics.json, per_image.csv, metrics.md)")
    _add_inference_options(p)
    add_report_option(p)
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
    add_report_option(p)
    p.set_defaults(func=cmd_robustness)

    p = sub.add_parser("info", help="variant, parameters and FLOPs of a checkpoint")
    p.add_argument("checkpoint", metavar="CKPT")
    p.add_argument("--size", type=_positive_int, default=FLOPS_SIZE, help="side of the square used to count FLOPs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert-keras", help="official-layout Keras .h5 -> single-file .msgpack")
    p.add_argument("input", metavar="IN.h5")
    p.add_argument("output", metavar="OUT.msgpack")
    p.add_argument("--variant", default=None, help="release variant (default: from the first layer)")
    p.add_argument("--windows", type=_windows, default=None, help="window sizes, e.g. 7,15,31")
    p.set_defaults(func=cmd_convert_keras)

    p = sub.add_parser("report", help="HTML report (report.html) of a detect, eval or robustness output folder")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the --out folder of a mantra run")
    p.set_defaults(func=cmd_report)

    add_weights_parser(sub)
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
    from mantra_jax.signals import restore_sigint

    previous = previous_int = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        previous_int = signal.getsignal(signal.SIGINT)
        restore_sigint()  # an inherited SIG_IGN would leave Ctrl-C unable to stop the command
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
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)

