"""The absl entry point of the flag-driven experiment scripts (bench_*.py, camera_probe.py, carry.py, ...).

    if __name__ == "__main__":
        script_main(main)            # absl's app.run(main), flags parsed by parse_flags

A bad flag (unknown name, unparsable or out-of-bounds value, a failed validator, a missing required flag)
or a stray positional argument ends the program with one line on stderr, ``<script>: error: bad flag: ...``,
and status 2; never a traceback. ``fail`` is that line and status for what ``main`` finds itself.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Callable, NoReturn

from absl import app, flags

BAD_FLAG_STATUS = 2


def fail(code: int, message: str) -> NoReturn:
    """``<script>: error: <message>`` (its first line) on stderr, then exit ``code``."""
    first = (str(message).strip().splitlines() or [""])[0]
    print(f"{pathlib.Path(sys.argv[0]).name}: error: {first}", file=sys.stderr)
    sys.exit(code)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's parse of ``argv`` (``[program, --flag, ...]``); see the module docstring for a bad one."""
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as e:
        fail(BAD_FLAG_STATUS, f"bad flag: {' '.join(str(e).split())}")
    if len(rest) > 1:
        fail(BAD_FLAG_STATUS, f"bad flag: unexpected arguments {rest[1:]}")
    return rest


def script_main(main: Callable[[list[str]], int | None]) -> None:
    """``app.run(main)`` with ``parse_flags``; ``main``'s return value is the exit status."""
    app.run(main, flags_parser=parse_flags)
