"""Signal set-up for the command line: a process started with SIGINT ignored (a parent's ``SIG_IGN``,
e.g. a job run in the background by a non-interactive shell) keeps it, since Python installs its
KeyboardInterrupt handler only when SIGINT is at its default; then Ctrl-C cannot stop ``mantra``."""

from __future__ import annotations

import signal
import threading


def restore_sigint() -> bool:
    """Makes SIGINT raise KeyboardInterrupt in this process (Python's ``default_int_handler``), whatever
    was inherited. Call it first thing in ``main()``. Returns False (and changes nothing) off the main
    thread, where handlers cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return True
