"""``mantra convert-keras``: official-layout Keras ``.h5`` -> single-file ``.msgpack``."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

from mantra_jax.cli.common import EXIT_OK, CliError


def cmd_convert_keras(args: argparse.Namespace) -> int:
    from mantra_jax.io.checkpoints import _is_hdf5, load_model
    from mantra_jax.io.msgpack_weights import save_weights_file

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
