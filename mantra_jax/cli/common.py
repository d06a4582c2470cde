"""Shared pieces of the ``mantra`` commands: exit statuses, the one-line error type and parser, option
types, the options every inference command takes (defined once), loading a detector, predicting, the
compile cache and its report, benchmark pairs and the progress bar."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable

EXIT_OK, EXIT_INPUTS_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_IMPORTED = time.monotonic()  # process_seconds' fallback where /proc is not there
DEFAULT_AUTO_TILE_PIXELS = 1 << 20
def _default_missing() -> str:
    from mantra_jax.io.pretrained import not_cached_message, registry

    return not_cached_message(registry()["default"])


NO_CHECKPOINT = _default_missing()  # what a command without --checkpoint says when the default is not cached


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
    """``args.checkpoint`` becomes a path (none: the default pretrained weights; a registry name: its cached
    file) and ``args.weights`` the record of pretrained weights used (``{"name", "blob_id"}``) or None."""
    from mantra_jax.io.pretrained import PretrainedError, resolve

    try:
        path, args.weights = resolve(args.checkpoint)
        if getattr(args, "complete_from", None):
            rest, rest_weights = resolve(args.complete_from)
            args.complete_from = str(rest)
            if rest_weights is not None:
                args.weights = {**(args.weights or {}), "complete_from": rest_weights}
    except PretrainedError as e:
        raise CliError(str(e)) from None
    args.checkpoint = str(path)


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


def make_predictor(model: Any, variables: Any, tile: int | None, auto_tile_pixels: int | None,
                   bounded: bool = False, *, memory: int | None = None,
                   variant: str | None = None) -> Callable[[Any], tuple[Any, bool]]:
    """``image (H, W, 3) uint8 -> (map (H, W) float32, tiled)``: whole image, or exact tiling (``bounded``:
    every image tiled through a bounded set of compiled shapes).

    With ``tile`` or ``auto_tile_pixels`` given, ``predict_auto`` decides as before; otherwise its memory
    planner (``infer.memory.predict_within``) keeps each image under ``memory`` bytes (default
    ``DEFAULT_BUDGET_BYTES``), with ``variant``'s measured costs. A map of the wrong shape or with a
    non-finite value, or an image that cannot fit the budget, raises ValueError (``infer.detect.check_map``)."""
    from mantra_jax.infer import tiled as tiled_inference
    from mantra_jax.infer.detect import check_map
    from mantra_jax.infer.memory import DEFAULT_BUDGET_BYTES, predict_within

    budget = None if auto_tile_pixels is not None else DEFAULT_BUDGET_BYTES if memory is None else memory
    pixels = DEFAULT_AUTO_TILE_PIXELS if auto_tile_pixels is None else auto_tile_pixels

    def predict(image: Any) -> tuple[Any, bool]:
        if tile is None and budget is not None:
            prob, tiled = predict_within(model, variables, image, budget, variant=variant, bounded=bounded)
        else:
            prob, tiled = tiled_inference.predict_auto(model, variables, image, tile=tile, auto_tile_pixels=pixels,
                                                       bounded=bounded)
        return check_map(prob, image.shape[:2]), tiled  # a non-finite map fails the image in every command

    return predict


def _memory(text: str) -> int:
    from mantra_jax.infer.memory import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def predictor_for(args: argparse.Namespace, model: Any, variables: Any, cfg: dict[str, Any],
                  bounded: bool = False) -> Callable[[Any], tuple[Any, bool]]:
    """``make_predictor`` from the inference options (``_add_inference_options``); CliError when ``--memory``
    is below what the process itself needs (imports, weights, compiling: ``infer.memory.Cost.fixed``)."""
    from mantra_jax.infer.memory import DEFAULT_BUDGET_BYTES, cost_for, format_bytes

    budget = DEFAULT_BUDGET_BYTES if args.memory is None else args.memory
    fixed = cost_for(cfg.get("variant"), model.compute.conv_algorithm).fixed
    if args.tile is None and args.auto_tile_pixels is None and budget <= fixed:
        raise CliError(f"--memory {format_bytes(budget)} is below the {format_bytes(fixed)} the process itself "
                       "needs (Python, JAX, the weights, compiling); give more, e.g. --memory 2G")
    return make_predictor(model, variables, args.tile, args.auto_tile_pixels, bounded, memory=budget,
                          variant=cfg.get("variant"))



def _add_inference_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", "-c", help="Orbax checkpoint directory, official-layout .h5, PyTorch-port .pt, "
                   ".msgpack or a pretrained weights name (mantra weights list; default: the default one, when in "
                   "the cache)")
    p.add_argument("--complete-from", metavar="CKPT", default=None,
                   help="for a PyTorch-port .pt holding only the feature extractor or only the detection head: the "
                        "checkpoint (any kind above, or a pretrained weights name) the other part comes from")
    p.add_argument("--tile", type=_positive_int, default=None,
                   help="always use exact tiled inference with this core tile size (pixels)")
    p.add_argument("--memory", type=_memory, default=None, metavar="SIZE",
                   help="keep peak memory (RSS) under this, e.g. 4G or 1536M: whole-image inference when it fits, "
                        "else exact tiling with the largest tile that fits (default 2G; mantra_jax.infer.memory)")
    p.add_argument("--auto-tile-pixels", type=_positive_int, default=None,
                   help="instead of --memory: tile (512 px tiles) above this many pixels, whole-image below")
    p.add_argument("--max-pixels", type=_positive_int, default=None,
                   help="refuse images and masks with more pixels than this, from their header (default: "
                        "mantra_jax.io.images' limit, 2^27)")
    p.add_argument("--max-bytes", type=_positive_int, default=None,
                   help="refuse image and mask files larger than this many bytes before reading (default 1 GiB)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: only on a terminal)")
    p.add_argument("--bounded-shapes", action=argparse.BooleanOptionalAction, default=None,
                   help="detect and eval: tile every image (exactly) through a bounded set of region shapes, so a "
                        "benchmark with many image sizes compiles a few programs, not one per size (costs some "
                        "overlap; default on for detect and eval; --no-bounded-shapes runs each image size whole "
                        "when it fits --memory, compiling one program per size)")
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


def processes() -> tuple[int, int]:
    """(index, count) of this process, after joining the distributed runtime when launched by
    ``mantra_jax.distributed.launch`` (or its variables); (0, 1) otherwise."""
    from mantra_jax.distributed import runtime

    if not runtime.launched():
        return 0, 1
    try:
        runtime.initialize_from_environment()
    except runtime.DistributedInitError as e:
        raise CliError(str(e)) from None
    import jax

    return jax.process_index(), jax.process_count()


def process_seconds() -> float:
    """Seconds since this process started. On Linux from the kernel's clock (``/proc/uptime`` less the
    process's start time in ``/proc/self/stat``, both since boot, to 10 ms): the interpreter's own start and
    every import included. Elsewhere since this module was imported, which leaves those out."""
    try:
        with open("/proc/self/stat") as f:  # the 22nd field, after the parenthesised command name
            started = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return max(float(f.read().split()[0]) - started, 0.0)
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED


def compile_start() -> dict[str, float]:
    """A snapshot for ``compile_report``: compilations and their seconds (``compile_cache.STATS``), JAX's
    persistent-cache events (``compile_cache.CACHE``), the wall clock, and the seconds the process took to
    get here (``process_seconds``: imports, weight loading, checks of the inputs and outputs)."""
    from mantra_jax.compile_cache import CACHE, STATS

    return {"count": STATS.count, "seconds": STATS.seconds, "hits": CACHE.hits, "writes": CACHE.writes,
            "t0": time.perf_counter(), "start": process_seconds()}


def compile_report(before: dict[str, float], run_seconds: float | None = None) -> dict[str, Any]:
    """``start_seconds`` (from the process's start to ``before = compile_start()``: imports, weight loading,
    input and output checks), then, since ``before``: ``compilations``, ``compile_seconds``,
    ``compute_seconds`` (the rest of ``run_seconds``, default: the wall time since ``before``), ``cache_hits``
    (programs JAX loaded from the persistent cache) and ``cache_writes`` (compiled and stored there)."""
    from mantra_jax.compile_cache import CACHE, STATS

    if run_seconds is None:
        run_seconds = time.perf_counter() - before["t0"]
    seconds = STATS.seconds - before["seconds"]
    return {"start_seconds": round(before["start"], 2),
            "compilations": STATS.count - before["count"], "compile_seconds": round(seconds, 2),
            "compute_seconds": round(run_seconds - seconds, 2), "cache_hits": CACHE.hits - before["hits"],
            "cache_writes": CACHE.writes - before["writes"]}


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


