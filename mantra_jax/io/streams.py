"""Standard streams that a caller closed (``mantra detect ... 2>&-``, ``mantra info >&-``).

Python starts with ``sys.stdout`` / ``sys.stderr`` set to None when file descriptor 1 / 2 is closed; then
``print(..., file=sys.stderr)`` silently goes to stdout and a ``.write`` call raises AttributeError. The
command replaces each missing stream with a writer to ``os.devnull`` (the exit status still tells the
result) and learns which were missing, so a command whose requested output is stdout can refuse.
"""

from __future__ import annotations

import os
import sys


def reopen_closed_streams() -> tuple[str, ...]:
    """Replaces a missing ``sys.stdout`` / ``sys.stderr`` by an ``os.devnull`` writer; returns the names
    (``"stdout"``, ``"stderr"``) of those that were missing."""
    closed = []
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as sys
            closed.append(name)
    return tuple(closed)
