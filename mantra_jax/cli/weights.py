"""``mantra weights list|fetch|add``: the authors' released weights in the local cache (``mantra_jax.io.pretrained``).

Nothing is downloaded before the licence is shown and accepted (``--accept-licence``, or y at the prompt on
a terminal); with no terminal and no flag the command refuses in one line.
"""

from __future__ import annotations

import argparse
import sys

from mantra_jax.cli.common import EXIT_OK, CliError


def add_weights_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="list, fetch or add the authors' released weights (local cache)")
    wsub = p.add_subparsers(dest="weights_command", required=True, parser_class=type(p))
    for name, help_text in (("list", "the registry's weights and whether each is in the cache"),
                            ("fetch", "download NAME into the cache after accepting its licence"),
                            ("add", "verify FILE (obtained another way) as NAME and copy it into the cache")):
        w = wsub.add_parser(name, help=help_text)
        if name != "list":
            w.add_argument("name", metavar="NAME", help="registry name, e.g. ptrain4")
        if name == "add":
            w.add_argument("file", metavar="FILE")
        if name == "fetch":
            w.add_argument("--accept-licence", action="store_true", help="accept the release's licence")
            w.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
            w.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                           help="progress bar on stderr (default: only on a terminal)")
        w.add_argument("--cache-dir", default=None,
                       help="weights cache (default: $MANTRA_WEIGHTS_DIR, else $XDG_CACHE_HOME/mantra_jax/weights)")
    p.set_defaults(func=cmd_weights)


def _consent(name: str, licence: str, accepted: bool) -> None:
    print(f"mantra weights: {name} licence: {licence}", file=sys.stderr)
    if accepted:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{name} needs the licence accepted: pass --accept-licence (no terminal to ask on)")
    answer = input("Accept this licence and download? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("licence not accepted; nothing was downloaded")


def cmd_weights(args: argparse.Namespace) -> int:
    from mantra_jax.io import pretrained

    if args.weights_command == "list":
        for row in pretrained.status(args.cache_dir):
            mark = "*" if row["default"] else " "
            where = row["cached"] or "not in the cache"
            print(f"{mark} {row['name']:<8} {row['variant']:<8} {row['blob_id']}  {where}")
        print(f"cache: {pretrained.cache_dir(args.cache_dir)}; * the default; licence: "
              f"{pretrained.registry()['weights'][pretrained.registry()['default']]['licence']}")
        return EXIT_OK
    e = pretrained.entry(args.name)
    if args.weights_command == "add":
        path = pretrained.add(args.name, args.file, args.cache_dir)
        print(f"mantra weights: {args.file} verified (blob id {e['blob_id']}); added as {path}", file=sys.stderr)
        return EXIT_OK
    cached = pretrained.cache_dir(args.cache_dir) / e["file"]
    if not cached.is_file():
        _consent(args.name, e["licence"], args.accept_licence)
    path = pretrained.fetch(args.name, args.cache_dir, accept_licence=True, timeout=args.timeout,
                            progress=args.progress)
    print(f"mantra weights: {args.name} (blob id {e['blob_id']}) in {path}", file=sys.stderr)
    return EXIT_OK
